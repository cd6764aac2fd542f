/**
 * Reaction bursts: what the module publishes and how.
 *
 * Every instance that accepted a reaction for (session, window w) schedules one publish attempt
 * at the window's end + PUBLISH_GRACE_MS (its own clock). The attempt closes the window in the
 * store: exactly one instance across the cluster gets the aggregate (the others get null and do
 * nothing). That instance writes the one durable ReactionWindow row and takes the next
 * `reactions:<sessionId>` seq in one transaction, then publishes the burst after the commit.
 * A window without reactions is never scheduled, so it publishes nothing. A reaction that
 * arrives after its window was closed (slow request, clock skew between instances, the grace
 * passed) is refused by the store and added to a later window by the service: counts stay exact,
 * and a window is never published twice.
 */
import type { PrismaClient } from '../../generated/prisma/client.js';
import type { ReactionType } from '../../generated/prisma/enums.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { appendToLog } from '../../realtime/event-log.js';
import { nextSeq } from '../../realtime/sequence.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';
import {
  REACTION_TYPES,
  toCountList,
  toGrid,
  totalOf,
  windowEndMs,
  windowStartMs,
  type WindowAggregate,
} from './reactions.rules.js';
import type { ReactionStore } from './reactions.store.js';

/** The payload of one burst (crosses Redis as JSON: ISO strings, plain objects). */
export interface ReactionBurstData {
  sessionId: string;
  /** ISO start of the window (inclusive); the window ends windowMs later. */
  windowStart: string;
  windowMs: number;
  /** Reactions in the window (each counts 1 whatever its intensity). */
  total: number;
  /** Sum of the reactions' intensities (1..10 each). */
  intensity: number;
  /** Every ReactionType in contract order, zeros included. */
  counts: { type: ReactionType; count: number }[];
  /** 8 rows × 8 columns of reaction counts (rows by y top to bottom, columns by x). */
  heatmap: number[][];
}

export type ReactionBurstEvent = RealtimeEvent<ReactionBurstData>;

/**
 * Wait after a window's end before closing it: requests that computed their window just before
 * the boundary still land in it instead of being moved to the next one. Anything later than this
 * is moved, never lost.
 */
export const PUBLISH_GRACE_MS = 40;
/** Attempts to close and persist one window before it is given up (and logged). */
const MAX_ATTEMPTS = 6;
const MAX_RETRY_DELAY_MS = 2_000;

export interface ReactionPublisher {
  /** This instance added a reaction to (session, window): make sure the window is published. */
  track(sessionId: string, window: number): void;
  /** Closes the window now, persists it and publishes its burst; null when another caller already had it or it was empty. */
  publishWindow(sessionId: string, window: number): Promise<ReactionBurstEvent | null>;
  /** Windows this instance is waiting to publish. */
  pending(): number;
  /** Publishes every tracked window now (acknowledged reactions still get their burst) and stops the timers. */
  close(): Promise<void>;
}

interface WindowState {
  sessionId: string;
  window: number;
  attempts: number;
  /** undefined: not closed by us yet; null: someone else closed it; otherwise ours to persist. */
  aggregate?: WindowAggregate | null;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
}

export function createReactionPublisher(deps: {
  prisma: PrismaClient;
  bus: EventBus;
  store: ReactionStore;
  windowMs: number;
  graceMs?: number;
  onError: (error: unknown, where: { sessionId: string; window: number; attempts: number; givenUp: boolean }) => void;
  now?: () => number;
}): ReactionPublisher {
  const { prisma, bus, store, windowMs, onError } = deps;
  const graceMs = deps.graceMs ?? PUBLISH_GRACE_MS;
  const now = deps.now ?? Date.now;
  const states = new Map<string, WindowState>();
  let closing = false;

  /** The one durable row and the seq, in one transaction; the burst goes out after the commit. */
  async function persistAndPublish(
    sessionId: string,
    window: number,
    aggregate: WindowAggregate,
  ): Promise<ReactionBurstEvent | null> {
    const total = totalOf(aggregate);
    if (total === 0) return null;
    const topic = topicName('reactions', sessionId);
    const windowStart = new Date(windowStartMs(window, windowMs));
    const heatmap = toGrid(aggregate.cells);
    const event = await prisma.$transaction(async (tx) => {
      // Never twice for one window: the primary key (sessionId, windowStart) backs the store's claim.
      const { count } = await tx.reactionWindow.createMany({
        data: [
          {
            sessionId,
            windowStart,
            windowMs,
            total,
            counts: Object.fromEntries(REACTION_TYPES.map((type) => [type, aggregate.counts[type]])),
            heatmap,
          },
        ],
        skipDuplicates: true,
      });
      if (count === 0) return null;
      const seq = await nextSeq(tx, topic);
      const data: ReactionBurstData = {
        sessionId,
        windowStart: windowStart.toISOString(),
        windowMs,
        total,
        intensity: aggregate.intensity,
        counts: toCountList(aggregate.counts),
        heatmap,
      };
      const event = { topic, seq, publishedAt: '', data } satisfies ReactionBurstEvent;
      await appendToLog(tx, [event]); // the resume history, committed with the seq
      return event;
    });
    if (!event) return null;
    event.publishedAt = new Date().toISOString();
    bus.publish('reactions', sessionId, event);
    return event;
  }

  async function attempt(state: WindowState): Promise<void> {
    if (state.aggregate === undefined) state.aggregate = await store.close(state.sessionId, state.window);
    if (state.aggregate) await persistAndPublish(state.sessionId, state.window, state.aggregate);
  }

  const keyOf = (sessionId: string, window: number): string => `${window}:${sessionId}`;

  function schedule(state: WindowState, delay: number): void {
    state.timer = setTimeout(() => run(state), closing ? 0 : Math.max(0, delay));
  }

  function run(state: WindowState): void {
    state.timer = undefined;
    state.running = attempt(state).then(
      () => {
        states.delete(keyOf(state.sessionId, state.window));
      },
      (error: unknown) => {
        state.attempts += 1;
        const givenUp = state.attempts >= MAX_ATTEMPTS;
        onError(error, { sessionId: state.sessionId, window: state.window, attempts: state.attempts, givenUp });
        if (givenUp) states.delete(keyOf(state.sessionId, state.window));
        else schedule(state, Math.min(50 * 2 ** state.attempts, MAX_RETRY_DELAY_MS));
      },
    );
    void state.running.finally(() => {
      state.running = undefined;
    });
  }

  return {
    track(sessionId, window) {
      const key = keyOf(sessionId, window);
      if (states.has(key)) return;
      const state: WindowState = { sessionId, window, attempts: 0 };
      states.set(key, state);
      schedule(state, windowEndMs(window, windowMs) + graceMs - now());
    },
    async publishWindow(sessionId, window) {
      const aggregate = await store.close(sessionId, window);
      return aggregate ? persistAndPublish(sessionId, window, aggregate) : null;
    },
    pending: () => states.size,
    async close() {
      closing = true;
      // Closing a window early is safe: other instances' late reactions move to a later window.
      for (;;) {
        const waiting = [...states.values()];
        if (waiting.length === 0) return;
        for (const state of waiting) {
          if (state.timer) {
            clearTimeout(state.timer);
            run(state);
          }
        }
        await Promise.all(waiting.map((s) => s.running).filter((running) => running !== undefined));
        await new Promise((resolve) => setImmediate(resolve));
      }
    },
  };
}

declare module '../../realtime/topics.js' {
  interface TopicMap {
    reactions: ReactionBurstData;
  }
}
