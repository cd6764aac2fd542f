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
import type { PrismaClient } from '../../generated/prisma/client.js';
import type { DomainEvents } from '../../domain-events.js';
import type { EventBus } from '../../realtime/event-bus.js';
import type { FanoutPacer } from '../../realtime/fanout-pacer.js';
import { currentSeq } from '../../realtime/sequence.js';
import { topicName } from '../../realtime/topics.js';

import { readStandings } from './voting.queries.js';
import { sequenceStandings, type FlushOutcome, type TallyEvent } from './voting.events.js';

export interface TallyPublisher {
  markDirty(competitionId: string): void;
  /** Publishes an update another module sequenced in its transaction (a status change), after its commit. */
  publish(event: TallyEvent): void;
  /** Reads the standings and publishes unless the cluster-wide window is taken or nothing changed. */
  flush(competitionId: string): Promise<FlushOutcome>;
  /** The current standings with the seq of the latest published state (for a new subscriber). */
  snapshot(competitionId: string): Promise<TallyEvent>;
  /**
   * Marks dirty the OPEN competitions whose latest vote may be missing from their last published
   * update and that nobody published for `staleMs`: the votes another instance acknowledged before
   * it died, its flush still pending, or its flush committed and its publish not sent. Returns
   * their ids. app runs it every `sweepMs` (see below).
   */
  sweepStale(staleMs: number): Promise<string[]>;
  /** Publishes whatever is still dirty and waits for in-flight flushes. */
  close(): Promise<void>;
}

/**
 * How long after a vote's createdAt it may still commit (createdAt is taken before the write):
 * a vote created this long before the last publish may still be missing from it.
 */
const COMMIT_MARGIN_MS = 10_000;

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
/**
 * The longest a flush waits for this instance's fan-out: standings never lag more than this behind
 * the pacing (equal to the shared stream's snapshot lag bound, where a backlog gives way anyway).
 */
const MAX_PACING_WAIT_MS = 2_000;

export function createTallyPublisher(deps: {
  prisma: PrismaClient;
  bus: EventBus;
  /** Where this instance's tally publishes are announced ('tally.published': vote milestones). */
  events?: Pick<DomainEvents, 'emit'>;
  /**
   * This instance's fan-out (realtime/fanout-pacer.ts): a flush waits until the previous update
   * is written to this instance's watchers, at most MAX_PACING_WAIT_MS.
   */
  pacer?: Pick<FanoutPacer, 'settled'>;
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
  let startClosing!: () => void;
  const closingSignal = new Promise<void>((resolve) => (startClosing = resolve));
  /** sweepStale: the latest vote each competition had when a flush found its standings unchanged. */
  const sweptAt = new Map<string, number>();

  async function flush(competitionId: string, opts: { ignoreWindow?: boolean } = {}): Promise<FlushOutcome> {
    const outcome = await prisma.$transaction((tx) =>
      sequenceStandings(tx, competitionId, opts.ignoreWindow ? null : flushMs),
    );
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
    state.running = (async () => {
      // Pacing: the previous update first reaches this instance's watchers, so updates come as
      // fast as they can be written and the writes leave the event loop room for votes. Votes
      // committed meanwhile are in the standings read below. Shutdown does not wait.
      if (!closing && deps.pacer) await Promise.race([deps.pacer.settled(MAX_PACING_WAIT_MS), closingSignal]);
      state.dirty = false;
      state.retryAt = undefined;
      state.lastFlushAt = Date.now();
      try {
        const outcome = await flush(competitionId, { ignoreWindow: closing });
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
      } catch (error) {
        // The votes are committed; only their broadcast failed. Retry with backoff.
        state.failures += 1;
        state.dirty = true;
        onError(error, competitionId);
      }
    })();
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

  const publisher: TallyPublisher = {
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
    async sweepStale(staleMs) {
      // A dirty mark lives in the memory of the instance that wrote the vote; if that instance
      // dies inside its flush window, the standings it owed are published by whoever sweeps.
      // One index lookup per OPEN competition (Vote's (competitionId, createdAt) index).
      const rows = await prisma.$queryRaw<{ id: string; lastVoteAt: Date | null; publishedAt: Date }[]>`
        SELECT c."id", t."updatedAt" AS "publishedAt",
               (SELECT MAX(v."createdAt") FROM "Vote" v WHERE v."competitionId" = c."id") AS "lastVoteAt"
        FROM "Competition" c JOIN "TopicSequence" t ON t."topic" = 'tally:' || c."id"
        WHERE c."status" = 'OPEN' AND t."updatedAt" < ${new Date(Date.now() - staleMs)}`;
      const stale: { id: string; last: number }[] = [];
      for (const { id, lastVoteAt, publishedAt } of rows) {
        const last = lastVoteAt?.getTime();
        if (last === undefined || last <= publishedAt.getTime() - COMMIT_MARGIN_MS) continue;
        if (sweptAt.get(id) === last || states.has(id)) continue; // already checked, or ours in progress
        stale.push({ id, last });
      }
      for (const { id, last } of stale) {
        const outcome = await flush(id).catch((error: unknown) => {
          onError(error, id);
          return undefined;
        });
        if (outcome?.kind === 'unchanged') {
          // Standings as last flushed; skip it until it gets a new vote. That flush's publish may
          // still be owed: an instance killed between its flush's commit and its publish. So it
          // is published once more (as read by the flush); watchers that had it drop it by its
          // seq (stream.ts), the others catch up.
          sweptAt.set(id, last);
          publishTally(outcome.event);
        } else if (outcome?.kind !== 'published') publisher.markDirty(id); // window taken or failed: the normal retries
      }
      if (sweptAt.size > 10_000) sweptAt.clear();
      return stale.map(({ id }) => id);
    },
    async close() {
      closing = true;
      startClosing();
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
  return publisher;
}
