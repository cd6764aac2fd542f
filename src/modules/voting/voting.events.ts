/**
 * Live tallies. A vote marks its competition dirty; at most one TallyUpdate per competition per
 * `flushMs` is built from the running totals (TallyTotal, kept by triggers on BallotEntry: see
 * foldTallyDeltas) and published. The window is kept in the competition's TopicSequence row, so
 * it holds across every instance: whichever instance flushes first in a window reads the totals
 * and publishes once; the others see the window taken and retry when it ends. Standings equal to
 * the last published ones publish nothing. So bursts cost one read and one fan-out per window in
 * the whole cluster, whatever the number of ballots stored, and the update after the last vote is
 * exact.
 *
 * The competition's status is part of the standings. A status change (open, close) takes its
 * update's seq in its own transaction, outside the window (sequenceStandings with no window), and
 * publishes it after the commit: the update that says CLOSED is the last one, and it counts every
 * vote acknowledged before the close (votes hold the competition row FOR SHARE, so the close
 * commits after them and a later vote finds it CLOSED). tallyUpdated ends after it (untilClosed).
 */
import { createHash } from 'node:crypto';
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js';
import { CompetitionStatus } from '../../generated/prisma/enums.js';
import type { DomainEvents } from '../../domain-events.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { currentSeq } from '../../realtime/sequence.js';
import { cancellableStream } from '../../realtime/stream.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';
import { rankEntries, totalVotes, type TallyCount, type TallyEntry } from './tally.js';

export interface TallySnapshot {
  competitionId: string;
  /** CLOSED: these standings are final and the stream ends after them. */
  status: CompetitionStatus;
  totalVotes: number;
  entries: TallyEntry[];
}

export type TallyEvent = RealtimeEvent<TallySnapshot>;

type Tx = Pick<Prisma.TransactionClient, '$queryRaw' | '$executeRaw'>;

const MINUTE_MS = 60_000;

/**
 * Every submission with its count, zero rows included; score by the competition's method
 * (RANKED: Borda points n - position, i.e. n * voters - sum of positions); momentum over the two
 * minutes before `now`. Null when the competition does not exist.
 *
 * Cost: one TallyTotal row per submission and one TallyDelta row per submission and connection
 * that wrote ballots (foldTallyDeltas), plus the ballots changed in the last two minutes
 * (momentum, through BallotEntry's updatedAt index); never the stored ballots as a whole, so a
 * competition's history does not slow it down.
 */
export async function readStandings(
  tx: Pick<Prisma.TransactionClient, '$queryRaw'>,
  competitionId: string,
  now: Date,
): Promise<TallySnapshot | null> {
  const minuteAgo = new Date(now.getTime() - MINUTE_MS);
  const twoMinutesAgo = new Date(now.getTime() - 2 * MINUTE_MS);
  // One round trip (every flush runs this, ~1/TALLY_FLUSH_MS under load): no row at all means no
  // such competition; one row without a submissionId, a competition without submissions.
  const rows = await tx.$queryRaw<(Omit<TallyCount, 'submissionId'> & { submissionId: string | null; previousMinute: number; status: CompetitionStatus })[]>`
    WITH c AS (SELECT "votingMethod" = 'RANKED' AS ranked, "status"::text AS status FROM "Competition" WHERE "id" = ${competitionId}),
         n AS (SELECT COUNT(*)::bigint AS n FROM "Submission" WHERE "competitionId" = ${competitionId}),
         pending AS (
           SELECT "submissionId", SUM("voters")::bigint AS voters, SUM("votes")::bigint AS votes, SUM("positions")::bigint AS positions
           FROM "TallyDelta" WHERE "competitionId" = ${competitionId} GROUP BY 1),
         recent AS (
           SELECT "submissionId", COUNT(*) FILTER (WHERE "updatedAt" > ${minuteAgo}) AS last, COUNT(*) FILTER (WHERE "updatedAt" <= ${minuteAgo}) AS previous
           FROM "BallotEntry" WHERE "competitionId" = ${competitionId} AND "updatedAt" > ${twoMinutesAgo} GROUP BY 1),
         counts AS (
           SELECT s."id", COALESCE(t."voters", 0) + COALESCE(p.voters, 0) AS voters, COALESCE(t."votes", 0) + COALESCE(p.votes, 0) AS votes,
                  COALESCE(t."positions", 0) + COALESCE(p.positions, 0) AS positions, COALESCE(r.last, 0) AS last, COALESCE(r.previous, 0) AS previous
           FROM "Submission" s
           LEFT JOIN "TallyTotal" t ON t."competitionId" = s."competitionId" AND t."submissionId" = s."id"
           LEFT JOIN pending p ON p."submissionId" = s."id"
           LEFT JOIN recent r ON r."submissionId" = s."id"
           WHERE s."competitionId" = ${competitionId})
    SELECT counts."id" AS "submissionId", counts.voters::int AS "votes",
           (CASE WHEN c.ranked THEN (SELECT n FROM n) * counts.voters - counts.positions ELSE counts.votes END)::float8 AS "score",
           counts.last::int AS "votesLastMinute", counts.previous::int AS "previousMinute", c.status AS "status"
    FROM c LEFT JOIN counts ON true`;
  if (rows.length === 0) return null;
  const counts = rows
    .filter((row): row is typeof row & { submissionId: string } => row.submissionId !== null)
    .map(({ previousMinute, status: _status, ...count }) => ({ ...count, momentum: count.votesLastMinute! - previousMinute }));
  const entries = rankEntries(counts);
  return { competitionId, status: rows[0]!.status, totalVotes: totalVotes(entries), entries };
}

/**
 * Moves the competition's TallyDelta rows of connections that have ended into TallyTotal, so the
 * rows a read adds up stay as few as the connections that write (those of live connections go on
 * accumulating in place: folding them would only create dead rows). One statement; a row that a
 * connection holds (a new connection that got an ended one's process id) is left for a later
 * fold rather than waited for, so a fold never waits for a writer. Run by every flush.
 */
export async function foldTallyDeltas(tx: Pick<Prisma.TransactionClient, '$executeRaw'>, competitionId: string): Promise<void> {
  await tx.$executeRaw`
    WITH gone AS (
      SELECT d."submissionId", d."backend" FROM "TallyDelta" d
      WHERE d."competitionId" = ${competitionId} AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a."pid" = d."backend")
      FOR UPDATE SKIP LOCKED
    ), moved AS (
      DELETE FROM "TallyDelta" d USING gone
      WHERE d."competitionId" = ${competitionId} AND d."submissionId" = gone."submissionId" AND d."backend" = gone."backend"
      RETURNING d."submissionId", d."voters", d."votes", d."positions"
    ), sums AS (
      SELECT "submissionId", SUM("voters")::int AS voters, SUM("votes")::bigint AS votes, SUM("positions")::bigint AS positions
      FROM moved GROUP BY 1
    )
    INSERT INTO "TallyTotal" ("competitionId", "submissionId", "voters", "votes", "positions")
    SELECT ${competitionId}, sums."submissionId", sums.voters, sums.votes, sums.positions
    FROM sums JOIN "Submission" s ON s."id" = sums."submissionId" AND s."competitionId" = ${competitionId}
    ORDER BY sums."submissionId"
    ON CONFLICT ("competitionId", "submissionId") DO UPDATE
      SET "voters" = "TallyTotal"."voters" + EXCLUDED."voters",
          "votes" = "TallyTotal"."votes" + EXCLUDED."votes",
          "positions" = "TallyTotal"."positions" + EXCLUDED."positions"`;
}

/** What identifies "the same standings": momentum drifts with time and does not count. */
function standingsHash(snapshot: TallySnapshot): string {
  return createHash('sha1')
    .update(JSON.stringify([snapshot.status, snapshot.entries.map((e) => [e.submissionId, e.votes, e.score])]))
    .digest('base64');
}

/**
 * Reads the competition's standings and takes the next seq for them in `tx`, unless they equal
 * the last sequenced ones or (with `windowMs`) an update was sequenced less than windowMs ago.
 * The caller publishes a 'published' event after its commit. Locks the competition's
 * TopicSequence row: callers that lock the Competition row lock it first.
 */
export async function sequenceStandings(tx: Tx, competitionId: string, windowMs: number | null): Promise<FlushOutcome> {
  const topic = topicName('tally', competitionId);
  // The row lock orders flushes across instances: a higher seq never carries older counts.
  const [row] = await tx.$queryRaw<{ seq: number; updatedAt: Date; stateHash: string | null }[]>`
    SELECT "seq", "updatedAt", "stateHash" FROM "TopicSequence" WHERE "topic" = ${topic} FOR UPDATE`;
  if (!row) return { kind: 'missing' };
  const now = new Date();
  const sinceLast = now.getTime() - new Date(row.updatedAt).getTime();
  if (windowMs !== null && row.seq > 0 && sinceLast >= 0 && sinceLast < windowMs) {
    return { kind: 'window-taken', retryInMs: windowMs - sinceLast };
  }
  await foldTallyDeltas(tx, competitionId);
  const snapshot = await readStandings(tx, competitionId, now);
  if (!snapshot) return { kind: 'missing' };
  const hash = standingsHash(snapshot);
  if (hash === row.stateHash) return { kind: 'unchanged' };
  const seq = row.seq + 1;
  await tx.$executeRaw`
    UPDATE "TopicSequence" SET "seq" = ${seq}, "updatedAt" = ${now}, "stateHash" = ${hash} WHERE "topic" = ${topic}`;
  // publishedAt is the instant the window was taken and the standings read, the same clock
  // that spaces windows: consecutive updates are never less than windowMs apart.
  return { kind: 'published', event: { topic, seq, publishedAt: now.toISOString(), data: snapshot } };
}

/**
 * The tally stream ends after the update that says CLOSED (the final standings): on every
 * transport the watcher gets it, then completion. return() closes the source at once.
 */
export function untilClosed(source: AsyncIterableIterator<TallyEvent>): AsyncIterableIterator<TallyEvent> {
  let closed = false;
  const finish = (): IteratorResult<TallyEvent> => {
    void source.return?.();
    return { value: undefined, done: true };
  };
  return cancellableStream(async () => {
    if (closed) return finish();
    const result = await source.next();
    if (!result.done && result.value.data.status === CompetitionStatus.CLOSED) closed = true;
    return result;
  }, finish);
}

export type FlushOutcome =
  | { kind: 'published'; event: TallyEvent }
  | { kind: 'unchanged' }
  /** Another instance (or this one) published within the window; try again after `retryInMs`. */
  | { kind: 'window-taken'; retryInMs: number }
  | { kind: 'missing' };

export interface TallyPublisher {
  markDirty(competitionId: string): void;
  /** Publishes an update another module sequenced in its transaction (a status change), after its commit. */
  publish(event: TallyEvent): void;
  /** Reads the standings and publishes unless the cluster-wide window is taken or nothing changed. */
  flush(competitionId: string): Promise<FlushOutcome>;
  /** The current standings with the seq of the latest published state (for a new subscriber). */
  snapshot(competitionId: string): Promise<TallyEvent>;
  /** Publishes whatever is still dirty and waits for in-flight flushes. */
  close(): Promise<void>;
}

interface FlushState {
  dirty: boolean;
  lastFlushAt: number;
  failures: number;
  retryAt?: number;
  timer?: NodeJS.Timeout;
  /** Forgets an idle competition once its throttle window has passed. */
  idleTimer?: NodeJS.Timeout;
  running?: Promise<void>;
}

const MAX_RETRY_DELAY_MS = 5_000;

export function createTallyPublisher(deps: {
  prisma: PrismaClient;
  bus: EventBus;
  /** Where this instance's tally publishes are announced ('tally.published': vote milestones). */
  events?: Pick<DomainEvents, 'emit'>;
  flushMs: number;
  onError: (error: unknown, competitionId: string) => void;
}): TallyPublisher {
  const { prisma, bus, flushMs, onError } = deps;
  const publishTally = (event: TallyEvent): void => {
    bus.publish('tally', event.data.competitionId, event);
    deps.events?.emit('tally.published', event);
  };
  const states = new Map<string, FlushState>();
  let closing = false;

  async function flush(competitionId: string, opts: { ignoreWindow?: boolean } = {}): Promise<FlushOutcome> {
    const outcome = await prisma.$transaction((tx) => sequenceStandings(tx, competitionId, opts.ignoreWindow ? null : flushMs));
    if (outcome.kind === 'published') publishTally(outcome.event);
    return outcome;
  }

  function schedule(competitionId: string, state: FlushState): void {
    if (state.timer || state.running) return;
    const backoff = state.failures === 0 ? 0 : Math.min(flushMs * 2 ** state.failures, MAX_RETRY_DELAY_MS);
    const now = Date.now();
    const delay = closing ? 0 : Math.max(0, state.lastFlushAt + flushMs - now, (state.retryAt ?? 0) - now, backoff);
    state.timer = setTimeout(() => run(competitionId, state), delay);
  }

  function run(competitionId: string, state: FlushState): void {
    state.timer = undefined;
    state.dirty = false;
    state.retryAt = undefined;
    state.lastFlushAt = Date.now();
    state.running = flush(competitionId, { ignoreWindow: closing }).then(
      (outcome) => {
        state.failures = 0;
        // The window opened when the standings were read inside the transaction, later than this
        // run began: counting the next one from there keeps the cadence at flushMs instead of
        // finding the window still taken and retrying (2.8 instead of 4 updates/s at 250 ms).
        if (outcome.kind === 'published') state.lastFlushAt = Date.parse(outcome.event.publishedAt);
        if (outcome.kind === 'window-taken') {
          // Whoever holds the window may have read the standings before our vote committed: try again.
          state.dirty = true;
          state.retryAt = Date.now() + outcome.retryInMs;
        }
      },
      (error: unknown) => {
        // The votes are committed; only their broadcast failed. Retry with backoff.
        state.failures += 1;
        state.dirty = true;
        onError(error, competitionId);
      },
    );
    void state.running.finally(() => {
      state.running = undefined;
      if (state.dirty && !(closing && state.failures > 0)) schedule(competitionId, state);
      else if (!state.dirty) {
        state.idleTimer = setTimeout(() => {
          if (!state.dirty && !state.running && !state.timer) states.delete(competitionId);
        }, flushMs);
        state.idleTimer.unref();
      }
    });
  }

  return {
    markDirty(competitionId) {
      let state = states.get(competitionId);
      if (!state) {
        state = { dirty: false, lastFlushAt: 0, failures: 0 };
        states.set(competitionId, state);
      }
      clearTimeout(state.idleTimer);
      state.dirty = true;
      schedule(competitionId, state);
    },
    publish: publishTally,
    flush: (competitionId) => flush(competitionId),
    async snapshot(competitionId) {
      const topic = topicName('tally', competitionId);
      return prisma.$transaction(async (tx) => {
        const seq = await currentSeq(tx, topic);
        const data = await readStandings(tx, competitionId, new Date());
        if (!data) throw new Error(`competition ${competitionId} vanished`);
        return { topic, seq, publishedAt: new Date().toISOString(), data };
      });
    },
    async close() {
      closing = true;
      for (const [competitionId, state] of states) {
        clearTimeout(state.idleTimer);
        if (state.timer) {
          clearTimeout(state.timer);
          run(competitionId, state);
        }
      }
      // Loop: a flush finishing may find its competition dirty again and run once more.
      while ([...states.values()].some((s) => s.running || s.timer)) {
        await Promise.all([...states.values()].map((s) => s.running).filter(Boolean));
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
