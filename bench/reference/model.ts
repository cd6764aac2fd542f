/**
 * The in-memory voting model shared by the reference servers: competitions, submissions, SIMPLE
 * votes (one per voter per submission, idempotency keys honoured) and standings ranked exactly
 * like Ovation's (score desc, then submissionId; equal scores share a rank). No database.
 *
 * The publisher either publishes on every vote (flushMs 0: no coalescing, the "naive" design) or
 * at most once per flushMs per competition carrying the full standings (like TALLY_FLUSH_MS).
 * Every publish takes the next `seq` (strictly increasing, no gaps).
 */
import { randomUUID } from 'node:crypto';

export interface TallyEntry {
  submissionId: string;
  votes: number;
  score: number;
  rank: number;
}

export interface TallyUpdate {
  competitionId: string;
  seq: number;
  publishedAt: string;
  totalVotes: number;
  entries: TallyEntry[];
}

export type Status = 'DRAFT' | 'OPEN' | 'CLOSED';

export interface Competition {
  id: string;
  title: string;
  status: Status;
  votingMethod: 'SIMPLE';
  createdAt: string;
  submissions: { id: string; competitionId: string; title: string }[];
  counts: Map<string, number>;
  ballots: Set<string>;
  keys: Map<string, { id: string; competitionId: string; createdAt: string; hash: string }>;
  totalVotes: number;
  seq: number;
  lastFlushAt: number;
  timer: NodeJS.Timeout | undefined;
}

export class ModelError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export function rank(competition: Competition): TallyEntry[] {
  const rows = competition.submissions.map((s) => {
    const votes = competition.counts.get(s.id) ?? 0;
    return { submissionId: s.id, votes, score: votes, rank: 0 };
  });
  rows.sort((a, b) =>
    b.score !== a.score
      ? b.score - a.score
      : a.submissionId < b.submissionId
        ? -1
        : a.submissionId > b.submissionId
          ? 1
          : 0,
  );
  rows.forEach((row, i) => {
    const prev = rows[i - 1];
    row.rank = prev?.score === row.score ? prev.rank : i + 1;
  });
  return rows;
}

export class Model {
  readonly competitions = new Map<string, Competition>();

  constructor(
    private readonly flushMs: number,
    private readonly publish: (update: TallyUpdate) => void,
  ) {}

  require(id: string): Competition {
    const c = this.competitions.get(id);
    if (!c) throw new ModelError(`Competition ${id} not found`, 'NOT_FOUND');
    return c;
  }

  createCompetition(title: string): Competition {
    const c: Competition = {
      id: randomUUID(),
      title,
      status: 'DRAFT',
      votingMethod: 'SIMPLE',
      createdAt: new Date().toISOString(),
      submissions: [],
      counts: new Map(),
      ballots: new Set(),
      keys: new Map(),
      totalVotes: 0,
      seq: 0,
      lastFlushAt: 0,
      timer: undefined,
    };
    this.competitions.set(c.id, c);
    return c;
  }

  createSubmission(competitionId: string, title: string): Competition['submissions'][number] {
    const c = this.require(competitionId);
    const s = { id: randomUUID(), competitionId, title };
    c.submissions.push(s);
    return s;
  }

  open(id: string): Competition {
    const c = this.require(id);
    if (c.status !== 'DRAFT') throw new ModelError(`Competition ${id} is ${c.status}`, 'CONFLICT');
    c.status = 'OPEN';
    return c;
  }

  /** Standings as of now, with the seq of the latest published update (for a new subscriber). */
  snapshot(c: Competition): TallyUpdate {
    return {
      competitionId: c.id,
      seq: c.seq,
      publishedAt: new Date().toISOString(),
      totalVotes: c.totalVotes,
      entries: rank(c),
    };
  }

  castVote(
    voterId: string,
    input: { competitionId: string; submissionId?: string | null; idempotencyKey?: string | null },
  ) {
    const c = this.require(input.competitionId);
    const hash = `${input.competitionId}|${input.submissionId ?? ''}`;
    const key = input.idempotencyKey ? `${voterId}|${input.idempotencyKey}` : undefined;
    if (key) {
      const previous = c.keys.get(key);
      if (previous) {
        if (previous.hash !== hash) throw new ModelError('idempotencyKey reused', 'CONFLICT');
        return { vote: previous, creditsRemaining: null };
      }
    }
    if (c.status !== 'OPEN') throw new ModelError(`Competition ${c.id} is ${c.status}`, 'VOTING_CLOSED');
    const submissionId = input.submissionId;
    if (!submissionId || !c.submissions.some((s) => s.id === submissionId))
      throw new ModelError('unknown submission', 'BAD_USER_INPUT');
    const ballot = `${voterId}|${submissionId}`;
    if (c.ballots.has(ballot)) throw new ModelError('already voted', 'CONFLICT');
    c.ballots.add(ballot);
    c.counts.set(submissionId, (c.counts.get(submissionId) ?? 0) + 1);
    c.totalVotes += 1;
    const vote = { id: randomUUID(), competitionId: c.id, createdAt: new Date().toISOString(), hash };
    if (key) c.keys.set(key, vote);
    this.changed(c);
    return { vote, creditsRemaining: null };
  }

  private changed(c: Competition): void {
    if (this.flushMs <= 0) {
      this.flush(c);
      return;
    }
    if (c.timer) return;
    const delay = Math.max(0, c.lastFlushAt + this.flushMs - Date.now());
    c.timer = setTimeout(() => {
      c.timer = undefined;
      this.flush(c);
    }, delay);
  }

  private flush(c: Competition): void {
    c.lastFlushAt = Date.now();
    c.seq += 1;
    this.publish({
      competitionId: c.id,
      seq: c.seq,
      publishedAt: new Date().toISOString(),
      totalVotes: c.totalVotes,
      entries: rank(c),
    });
  }
}

/** Extracts `sub` from a Bearer JWT without verifying it (raw-ws: the ceiling does no auth). */
export function unverifiedSub(authorization: string | undefined): string | undefined {
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
  const payload = token?.split('.')[1];
  if (!payload) return undefined;
  try {
    const sub = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}
