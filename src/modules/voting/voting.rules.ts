/**
 * Voting's pure rules, no I/O: what a ballot is under each method (parse, cost, Borda points),
 * the tally arithmetic shared by the leaderboard and the live updates (ranks), and instant-runoff.
 */
import { VotingMethod } from '../../generated/prisma/enums.js';
import { badInput } from '../../errors.js';

// --------------------------------------------------------------------------------- ballots

/**
 * Parsing a CastVoteInput into the ballot action its competition's method allows. Pure: the
 * caller passes the competition's submission ids. Every rejection names the input field.
 */
export type Ballot =
  | { method: 'SIMPLE'; submissionId: string }
  | { method: 'QUADRATIC'; submissionId: string; votes: number }
  | { method: 'RANKED'; ranking: string[] }
  | { method: 'APPROVAL'; approvals: string[] };

export interface BallotInput {
  submissionId?: string | null;
  votes?: number | null;
  ranking?: readonly string[] | null;
  approvals?: readonly string[] | null;
}

const FIELDS_BY_METHOD: Record<VotingMethod, readonly (keyof BallotInput)[]> = {
  SIMPLE: ['submissionId'],
  QUADRATIC: ['submissionId', 'votes'],
  RANKED: ['ranking'],
  APPROVAL: ['approvals'],
};
const ALL_FIELDS: readonly (keyof BallotInput)[] = ['submissionId', 'votes', 'ranking', 'approvals'];
/** Above this, v² overflows any sensible budget long before it matters. */
const MAX_QUADRATIC_VOTES = 10_000;

const present = (value: unknown): boolean => value !== undefined && value !== null;

function knownSubmission(field: string, id: string, submissionIds: ReadonlySet<string>): string {
  if (!submissionIds.has(id)) throw badInput(field, `Submission ${id} is not part of this competition`);
  return id;
}

function distinctKnown(field: string, ids: readonly string[], submissionIds: ReadonlySet<string>): string[] {
  const seen = new Set<string>();
  ids.forEach((id, index) => {
    knownSubmission(`${field}[${index}]`, id, submissionIds);
    if (seen.has(id)) throw badInput(`${field}[${index}]`, `Submission ${id} appears twice in ${field}`);
    seen.add(id);
  });
  return [...ids];
}

export function parseBallot(method: VotingMethod, input: BallotInput, submissionIds: ReadonlySet<string>): Ballot {
  const allowed = FIELDS_BY_METHOD[method];
  for (const field of ALL_FIELDS) {
    if (present(input[field]) && !allowed.includes(field)) {
      throw badInput(`input.${field}`, `${field} is not used by ${method} voting; send ${allowed.join(' and ')}`);
    }
  }
  for (const field of allowed) {
    if (!present(input[field])) throw badInput(`input.${field}`, `${field} is required for ${method} voting`);
  }
  switch (method) {
    case VotingMethod.SIMPLE:
      return { method, submissionId: knownSubmission('input.submissionId', input.submissionId!, submissionIds) };
    case VotingMethod.QUADRATIC: {
      const votes = input.votes!;
      if (!Number.isInteger(votes) || votes < 0)
        throw badInput('input.votes', 'votes must be a whole number ≥ 0 (0 withdraws them)');
      if (votes > MAX_QUADRATIC_VOTES) throw badInput('input.votes', `votes must be at most ${MAX_QUADRATIC_VOTES}`);
      return { method, submissionId: knownSubmission('input.submissionId', input.submissionId!, submissionIds), votes };
    }
    case VotingMethod.RANKED: {
      if (input.ranking!.length === 0) throw badInput('input.ranking', 'ranking must list at least one submission');
      return { method, ranking: distinctKnown('input.ranking', input.ranking!, submissionIds) };
    }
    case VotingMethod.APPROVAL:
      return { method, approvals: distinctKnown('input.approvals', input.approvals!, submissionIds) };
  }
}

/** QUADRATIC: what a voter's ballot costs, v votes on one submission costing v². */
export function quadraticCost(votesBySubmission: Iterable<number>): number {
  let cost = 0;
  for (const votes of votesBySubmission) cost += votes * votes;
  return cost;
}

/** RANKED: Borda points of a 1-based position with n submissions in the competition. */
export const bordaPoints = (submissionCount: number, position: number): number =>
  Math.max(0, submissionCount - position);

// ----------------------------------------------------------------------------------- tally

export interface TallyEntry extends TallyCount {
  rank: number;
}

export interface TallyCount {
  submissionId: string;
  votes: number;
  score: number;
  /** Ballot changes that gave this submission something in the last 60 s. */
  votesLastMinute?: number;
  /** votesLastMinute minus the same count for the minute before. */
  momentum?: number;
}

/**
 * One entry per submission, sorted by score (desc) then submissionId; equal scores share a rank
 * and the next rank skips (1, 1, 3), as the contract's TallyEntry says.
 */
export function rankEntries(counts: readonly TallyCount[]): TallyEntry[] {
  const sorted = [...counts].sort((a, b) =>
    b.score !== a.score
      ? b.score - a.score
      : a.submissionId < b.submissionId
        ? -1
        : a.submissionId > b.submissionId
          ? 1
          : 0,
  );
  const entries: TallyEntry[] = [];
  sorted.forEach((count, index) => {
    const previous = entries[index - 1];
    const rank = previous?.score === count.score ? previous.rank : index + 1;
    entries.push({ ...count, rank });
  });
  return entries;
}

export const totalVotes = (entries: readonly TallyEntry[]): number => entries.reduce((sum, e) => sum + e.votes, 0);

// ---------------------------------------------------------------------------------- runoff

/**
 * Instant-runoff (IRV) for RANKED competitions, computed when a competition closes. Each round
 * counts every ballot for its highest-ranked remaining submission; a submission with more than
 * half of the ballots still in play wins. Otherwise the submission with the fewest votes is
 * eliminated. Ties for last place are broken by fewer first-round votes, then by the greater
 * submissionId, so the result is deterministic and anyone can recompute it.
 */

export interface RunoffTally {
  submissionId: string;
  votes: number;
}

export interface RunoffRound {
  round: number;
  /** Every submission still in the race, most votes first (then submissionId). */
  tallies: RunoffTally[];
  /** Eliminated at the end of this round (empty in the deciding round). */
  eliminated: string[];
  /** Ballots whose every ranked submission is already eliminated. */
  exhaustedBallots: number;
}

export interface RunoffResult {
  winnerId: string | null;
  rounds: RunoffRound[];
}

/**
 * `weights[i]`: how many voters cast `ballots[i]` (1 each when omitted). The close passes each
 * distinct ranking once with its count, grouped in SQL: a million ballots are a few hundred rows.
 */
export function instantRunoff(
  candidates: readonly string[],
  ballots: readonly (readonly string[])[],
  weights?: readonly number[],
): RunoffResult {
  const remaining = new Set(candidates);
  const weightOf = (i: number): number => weights?.[i] ?? 1;
  let cast = 0;
  for (let i = 0; i < ballots.length; i += 1) cast += weightOf(i);
  const rounds: RunoffRound[] = [];
  let firstRound: Map<string, number> | undefined;

  while (remaining.size > 0) {
    const counts = new Map([...remaining].map((id) => [id, 0]));
    let exhausted = 0;
    ballots.forEach((ballot, i) => {
      const choice = ballot.find((id) => remaining.has(id));
      if (choice === undefined) exhausted += weightOf(i);
      else counts.set(choice, counts.get(choice)! + weightOf(i));
    });
    firstRound ??= counts;
    const tallies = [...counts]
      .map(([submissionId, votes]) => ({ submissionId, votes }))
      .sort((a, b) => b.votes - a.votes || (a.submissionId < b.submissionId ? -1 : 1));
    const active = cast - exhausted;
    const leader = tallies[0]!;
    if (active === 0) {
      // Nobody voted (or every ballot is exhausted): there is no winner to declare.
      rounds.push({ round: rounds.length + 1, tallies, eliminated: [], exhaustedBallots: exhausted });
      return { winnerId: null, rounds };
    }
    if (leader.votes * 2 > active || remaining.size === 1) {
      rounds.push({ round: rounds.length + 1, tallies, eliminated: [], exhaustedBallots: exhausted });
      return { winnerId: leader.submissionId, rounds };
    }
    const loser = [...tallies].sort(
      (a, b) =>
        a.votes - b.votes ||
        firstRound!.get(a.submissionId)! - firstRound!.get(b.submissionId)! ||
        (a.submissionId < b.submissionId ? 1 : -1),
    )[0]!.submissionId;
    remaining.delete(loser);
    rounds.push({ round: rounds.length + 1, tallies, eliminated: [loser], exhaustedBallots: exhausted });
  }
  return { winnerId: null, rounds };
}
