/**
 * Live tallies. A vote marks its competition dirty; at most one TallyUpdate per competition per
 * `flushMs` is built from a recount of the stored ballots and published, so bursts of votes cost
 * one recount and one fan-out per window, and the update after the last vote is exact.
 */
import type { PrismaClient, Prisma } from '../../generated/prisma/client.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { currentSeq, nextSeq } from '../../realtime/sequence.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';
import { rankEntries, totalVotes, type TallyCount, type TallyEntry } from './tally.js';

export interface TallySnapshot {
  competitionId: string;
  totalVotes: number;
  entries: TallyEntry[];
}

export type TallyEvent = RealtimeEvent<TallySnapshot>;

type Tx = Pick<Prisma.TransactionClient, '$queryRaw' | '$executeRaw'>;

/** Every submission with its count; zero rows included, so the standings list every entry. */
export async function readCounts(tx: Tx, competitionId: string): Promise<TallyCount[]> {
  return tx.$queryRaw<TallyCount[]>`
    SELECT s."id" AS "submissionId",
           COUNT(b."submissionId")::int AS "votes",
           COALESCE(SUM(b."votes"), 0)::float8 AS "score"
    FROM "Submission" s
    LEFT JOIN "BallotEntry" b ON b."competitionId" = s."competitionId" AND b."submissionId" = s."id"
    WHERE s."competitionId" = ${competitionId}
    GROUP BY s."id"`;
}

export function buildSnapshot(competitionId: string, counts: readonly TallyCount[]): TallySnapshot {
  const entries = rankEntries(counts);
  return { competitionId, totalVotes: totalVotes(entries), entries };
}

export interface TallyPublisher {
  markDirty(competitionId: string): void;
  /** Recounts, takes the next seq and publishes now; resolves with the published event. */
  flush(competitionId: string): Promise<TallyEvent>;
  /** The current standings with the seq of the latest published state (for a new subscriber). */
  snapshot(competitionId: string): Promise<TallyEvent>;
  /** Publishes whatever is still dirty and waits for in-flight flushes. */
  close(): Promise<void>;
}

interface FlushState {
  dirty: boolean;
  lastFlushAt: number;
  failures: number;
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

  async function flush(competitionId: string): Promise<TallyEvent> {
    const topic = topicName('tally', competitionId);
    const event = await prisma.$transaction(async (tx) => {
      // The seq row lock orders recounts across instances: a higher seq never carries older counts.
      const seq = await nextSeq(tx, topic);
      const counts = await readCounts(tx, competitionId);
      return { topic, seq, publishedAt: '', data: buildSnapshot(competitionId, counts) };
    });
    event.publishedAt = new Date().toISOString();
    bus.publish('tally', competitionId, event);
    return event;
  }

  function schedule(competitionId: string, state: FlushState): void {
    if (state.timer || state.running) return;
    const backoff = state.failures === 0 ? 0 : Math.min(flushMs * 2 ** state.failures, MAX_RETRY_DELAY_MS);
    const delay = closing ? 0 : Math.max(0, state.lastFlushAt + flushMs - Date.now(), backoff);
    state.timer = setTimeout(() => run(competitionId, state), delay);
  }

  function run(competitionId: string, state: FlushState): void {
    state.timer = undefined;
    state.dirty = false;
    state.lastFlushAt = Date.now();
    state.running = flush(competitionId).then(
      () => {
        state.failures = 0;
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
    flush,
    async snapshot(competitionId) {
      const topic = topicName('tally', competitionId);
      const event = await prisma.$transaction(async (tx) => {
        const seq = await currentSeq(tx, topic);
        const counts = await readCounts(tx, competitionId);
        return { topic, seq, publishedAt: new Date().toISOString(), data: buildSnapshot(competitionId, counts) };
      });
      return event;
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
