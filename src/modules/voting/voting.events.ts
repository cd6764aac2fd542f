/**
 * Live tallies. A vote marks its competition dirty; at most one TallyUpdate per competition per
 * `flushMs` is built from a recount of the stored ballots and published. The window is kept in
 * the competition's TopicSequence row, so it holds across every instance: whichever instance
 * flushes first in a window recounts and publishes once; the others see the window taken and
 * retry when it ends. A recount whose standings equal the last published ones publishes nothing.
 * So bursts cost one recount and one fan-out per window in the whole cluster, and the update
 * after the last vote is exact.
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
 * (RANKED: Borda points n - position); momentum over the two minutes before `now`. Null when the
 * competition does not exist.
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
         n AS (SELECT COUNT(*)::int AS n FROM "Submission" WHERE "competitionId" = ${competitionId})
    SELECT s."id" AS "submissionId",
           COUNT(b."submissionId")::int AS "votes",
           CASE WHEN c.ranked THEN COALESCE(SUM(GREATEST((SELECT n FROM n) - b."position", 0)), 0)
                ELSE COALESCE(SUM(b."votes"), 0) END::float8 AS "score",
           COUNT(b."submissionId") FILTER (WHERE b."updatedAt" > ${minuteAgo})::int AS "votesLastMinute",
           COUNT(b."submissionId") FILTER (WHERE b."updatedAt" > ${twoMinutesAgo} AND b."updatedAt" <= ${minuteAgo})::int AS "previousMinute",
           c.status AS "status"
    FROM c
    LEFT JOIN "Submission" s ON s."competitionId" = ${competitionId}
    LEFT JOIN "BallotEntry" b ON b."competitionId" = s."competitionId" AND b."submissionId" = s."id"
    GROUP BY c.ranked, c.status, s."id"`;
  if (rows.length === 0) return null;
  const counts = rows
    .filter((row): row is typeof row & { submissionId: string } => row.submissionId !== null)
    .map(({ previousMinute, status: _status, ...count }) => ({ ...count, momentum: count.votesLastMinute! - previousMinute }));
  const entries = rankEntries(counts);
  return { competitionId, status: rows[0]!.status, totalVotes: totalVotes(entries), entries };
}

/** What identifies "the same standings": momentum drifts with time and does not count. */
function standingsHash(snapshot: TallySnapshot): string {
  return createHash('sha1')
    .update(JSON.stringify([snapshot.status, snapshot.entries.map((e) => [e.submissionId, e.votes, e.score])]))
    .digest('base64');
}

/**
 * Recounts the competition and takes the next seq for its standings in `tx`, unless they equal
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
  /** Recounts and publishes unless the cluster-wide window is taken or nothing changed. */
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
  flushMs: number;
  onError: (error: unknown, competitionId: string) => void;
}): TallyPublisher {
  const { prisma, bus, flushMs, onError } = deps;
  const states = new Map<string, FlushState>();
  let closing = false;

  async function flush(competitionId: string, opts: { ignoreWindow?: boolean } = {}): Promise<FlushOutcome> {
    const outcome = await prisma.$transaction((tx) => sequenceStandings(tx, competitionId, opts.ignoreWindow ? null : flushMs));
    if (outcome.kind === 'published') bus.publish('tally', competitionId, outcome.event);
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
          // Whoever holds the window may have recounted before our vote committed: try again.
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
    publish: (event) => bus.publish('tally', event.data.competitionId, event),
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
      while ([...states.values()].some((s) => s.running !== undefined || s.timer !== undefined)) {
        await Promise.all([...states.values()].map((s) => s.running).filter((running) => running !== undefined));
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}
