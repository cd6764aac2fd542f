/**
 * Live reactions. `send` validates, checks the session is LIVE (the sessions module's status
 * cache: exact for changes made on this instance, at most a second old for changes made on
 * others) and adds the reaction to the current clock-aligned window in the ReactionStore: one
 * store round trip on the hot path, never a database row per reaction. Bursts and the durable
 * per-window rows come from reactions.events.ts; analytics (`stats`, `reactionsPerSecond`) read
 * those rows.
 */
import type { PrismaClient } from '../../generated/prisma/client.js';
import { SessionStatus, type ReactionType } from '../../generated/prisma/enums.js';
import { AppError, ErrorCode, badInput } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { eventLogHistory } from '../../realtime/event-log.js';
import { readEventPage, resumableStream, type EventPage } from '../../realtime/resume.js';
import { topicName } from '../../realtime/topics.js';
import {
  REACTION_TYPES,
  heatmapCell,
  toCountList,
  toGrid,
  windowOf,
  windowStartMs,
  HEATMAP_CELLS,
  HEATMAP_SIZE,
  type ReactionEntry,
} from './reactions.rules.js';
import { sessionNotFound, sessionNotLive } from './reactions.errors.js';
import {
  createReactionPublisher,
  type ReactionBurstData,
  type ReactionBurstEvent,
  type ReactionPublisher,
} from './reactions.events.js';
import type { ReactionStore } from './reactions.store.js';

export interface SendReactionInput {
  sessionId: string;
  type: ReactionType;
  intensity: number;
  x?: number | null;
  y?: number | null;
}

export interface ReactionStats {
  sessionId: string;
  /** Start of the first window counted (inclusive). */
  since: Date;
  /** End of the last window counted (exclusive). */
  until: Date;
  windows: number;
  total: number;
  reactionsPerSecond: number;
  counts: { type: ReactionType; count: number }[];
  heatmap: number[][];
}

const ID_MAX = 128;
export const INTENSITY_MIN = 1;
export const INTENSITY_MAX = 10;
export const STATS_MAX_SECONDS = 3_600;
/** Undelivered bursts kept per subscriber before it is cut off as too slow (≈ 1 min at 250 ms). */
export const SUBSCRIBER_MAX_BUFFER = 256;
/** A window moved forward this many times in a row means something is wrong with the store. */
const MAX_WINDOW_MOVES = 20;

/** Checks one reaction and turns it into what the stores count; BAD_USER_INPUT names the field. */
export function validateReaction(input: SendReactionInput): ReactionEntry {
  if (!(REACTION_TYPES as readonly string[]).includes(input.type)) {
    throw badInput('input.type', `type must be one of ${REACTION_TYPES.join(', ')}`);
  }
  if (!Number.isInteger(input.intensity) || input.intensity < INTENSITY_MIN || input.intensity > INTENSITY_MAX) {
    throw badInput('input.intensity', `intensity must be an integer from ${INTENSITY_MIN} to ${INTENSITY_MAX}`);
  }
  const hasX = input.x !== undefined && input.x !== null;
  const hasY = input.y !== undefined && input.y !== null;
  if (hasX !== hasY) {
    const missing = hasX ? 'y' : 'x';
    throw badInput(`input.${missing}`, 'x and y go together: send both (a position on the screen) or neither');
  }
  for (const field of ['x', 'y'] as const) {
    const v = input[field];
    if (v !== undefined && v !== null && !(Number.isFinite(v) && v >= 0 && v <= 1)) {
      throw badInput(`input.${field}`, `${field} must be a normalised screen position from 0 to 1`);
    }
  }
  return { type: input.type, intensity: input.intensity, cell: hasX ? heatmapCell(input.x!, input.y!) : null };
}

/** The completed windows ending before the one that just ended (it may be publishing still). */
export function completedSpan(
  nowMs: number,
  windowMs: number,
  seconds: number,
): { since: number; until: number; windows: number } {
  const until = windowStartMs(windowOf(nowMs, windowMs) - 1, windowMs);
  const windows = Math.max(1, Math.ceil((seconds * 1000) / windowMs));
  return { since: until - windows * windowMs, until, windows };
}

export function createReactionsService(deps: {
  prisma: PrismaClient;
  bus: EventBus;
  store: ReactionStore;
  windowMs: number;
  /** Delay after a window's end before it is closed (default PUBLISH_GRACE_MS). */
  graceMs?: number;
  onError: (message: string, details: Record<string, unknown>) => void;
  /**
   * Where session statuses come from (null: no such session): the sessions module's status cache,
   * fresh on this instance and at most a second old for changes made on others.
   */
  sessionStatus: (sessionId: string) => Promise<SessionStatus | null>;
  /** RESUME_WINDOW_SECONDS: how long bursts are kept for resuming. */
  resumeWindowSeconds?: number;
  now?: () => number;
}) {
  const { prisma, bus, store, windowMs, onError } = deps;
  const now = deps.now ?? Date.now;
  const history = (sessionId: string) =>
    eventLogHistory<ReactionBurstData>(prisma, topicName('reactions', sessionId), deps.resumeWindowSeconds ?? 300);
  const publisher: ReactionPublisher = createReactionPublisher({
    prisma,
    bus,
    store,
    windowMs,
    graceMs: deps.graceMs,
    now,
    onError: (error, where) =>
      onError(
        where.givenUp
          ? 'reaction window could not be published; its reactions are lost'
          : 'reaction window publish failed; retrying',
        {
          ...where,
          error,
        },
      ),
  });

  async function requireSession(id: string): Promise<SessionStatus> {
    if (id.length === 0 || id.length > ID_MAX) throw sessionNotFound(id);
    const status = await deps.sessionStatus(id);
    if (status === null) throw sessionNotFound(id);
    return status;
  }

  /** Sums the durable windows of [since, until). */
  async function readWindows(sessionId: string, since: Date, until: Date) {
    const [totals] = await prisma.$queryRaw<({ windows: number; total: number } & Record<ReactionType, number>)[]>`
      SELECT COUNT(*)::int AS "windows", COALESCE(SUM("total"), 0)::int AS "total",
             COALESCE(SUM(("counts"->>'CLAP')::int), 0)::int AS "CLAP",
             COALESCE(SUM(("counts"->>'FIRE')::int), 0)::int AS "FIRE",
             COALESCE(SUM(("counts"->>'HEART')::int), 0)::int AS "HEART",
             COALESCE(SUM(("counts"->>'WOW')::int), 0)::int AS "WOW",
             COALESCE(SUM(("counts"->>'LAUGH')::int), 0)::int AS "LAUGH"
      FROM "ReactionWindow"
      WHERE "sessionId" = ${sessionId} AND "windowStart" >= ${since} AND "windowStart" < ${until}`;
    const cells = await prisma.$queryRaw<{ row: number; col: number; n: number }[]>`
      SELECT (r.i - 1)::int AS "row", (c.j - 1)::int AS "col", SUM(c.v::int)::int AS "n"
      FROM "ReactionWindow" w,
           jsonb_array_elements(w."heatmap") WITH ORDINALITY AS r(cols, i),
           jsonb_array_elements_text(r.cols) WITH ORDINALITY AS c(v, j)
      WHERE w."sessionId" = ${sessionId} AND w."windowStart" >= ${since} AND w."windowStart" < ${until}
      GROUP BY 1, 2`;
    const flat = new Array<number>(HEATMAP_CELLS).fill(0);
    for (const { row, col, n } of cells) {
      if (row >= 0 && row < HEATMAP_SIZE && col >= 0 && col < HEATMAP_SIZE) flat[row * HEATMAP_SIZE + col] = n;
    }
    const counts = Object.fromEntries(REACTION_TYPES.map((type) => [type, Number(totals?.[type] ?? 0)])) as Record<
      ReactionType,
      number
    >;
    return { windows: Number(totals?.windows ?? 0), total: Number(totals?.total ?? 0), counts, heatmap: toGrid(flat) };
  }

  function checkSeconds(field: string, seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > STATS_MAX_SECONDS) {
      throw badInput(field, `${field} must be an integer from 1 to ${STATS_MAX_SECONDS}`);
    }
  }

  return {
    /**
     * Counts one reaction in the current window; returns the window it landed in (a later one
     * than the clock's when the clock's was already closed).
     */
    async send(_viewer: Viewer, input: SendReactionInput): Promise<{ window: number }> {
      const entry = validateReaction(input);
      const status = await requireSession(input.sessionId);
      if (status !== SessionStatus.LIVE) throw sessionNotLive(input.sessionId, status);
      let window = windowOf(now(), windowMs);
      for (let moves = 0; ; moves += 1) {
        if (await store.add(input.sessionId, window, entry)) {
          publisher.track(input.sessionId, window);
          return { window };
        }
        if (moves >= MAX_WINDOW_MOVES) {
          throw new AppError(
            ErrorCode.INTERNAL_SERVER_ERROR,
            'reaction windows keep closing before the reaction lands',
          );
        }
        window = Math.max(window + 1, windowOf(now(), windowMs));
      }
    },

    /** NOT_FOUND unless the session exists (status through the cache). */
    requireSession,

    /**
     * The session's bursts in seq order: after `afterSeq` (replayed from the history;
     * RESYNC_REQUIRED when no longer kept or ahead), else from the moment the subscription is live.
     */
    async subscribe(sessionId: string, afterSeq?: number | null): Promise<AsyncIterableIterator<ReactionBurstEvent>> {
      await requireSession(sessionId);
      return resumableStream({
        subscribe: () => bus.subscribe('reactions', sessionId, { maxBuffer: SUBSCRIBER_MAX_BUFFER }),
        history: history(sessionId),
        afterSeq,
        gapWaitMs: Math.min(500, Math.max(100, windowMs)),
      });
    },

    /** reactionEvents: the polling counterpart of reactions. */
    async events(
      sessionId: string,
      args: { afterSeq?: number | null; first?: number | null },
    ): Promise<EventPage<ReactionBurstData>> {
      await requireSession(sessionId);
      return readEventPage(history(sessionId), args);
    },

    /** Analytics from the durable windows: the completed windows of the last `lastSeconds`. */
    async stats(sessionId: string, lastSeconds: number): Promise<ReactionStats> {
      checkSeconds('lastSeconds', lastSeconds);
      await requireSession(sessionId);
      const span = completedSpan(now(), windowMs, lastSeconds);
      const since = new Date(span.since);
      const until = new Date(span.until);
      const sums = await readWindows(sessionId, since, until);
      return {
        sessionId,
        since,
        until,
        windows: sums.windows,
        total: sums.total,
        reactionsPerSecond: sums.total / ((span.until - span.since) / 1000),
        counts: toCountList(sums.counts),
        heatmap: sums.heatmap,
      };
    },

    /**
     * Reactions per second over the completed windows of the last `lastSeconds` (default 5),
     * cluster-wide, from the durable rows: for a live dashboard (lags the clock by one to two windows).
     */
    async reactionsPerSecond(sessionId: string, lastSeconds = 5): Promise<number> {
      checkSeconds('lastSeconds', lastSeconds);
      const span = completedSpan(now(), windowMs, lastSeconds);
      const [row] = await prisma.$queryRaw<{ total: number }[]>`
        SELECT COALESCE(SUM("total"), 0)::int AS "total" FROM "ReactionWindow"
        WHERE "sessionId" = ${sessionId} AND "windowStart" >= ${new Date(span.since)} AND "windowStart" < ${new Date(span.until)}`;
      return Number(row?.total ?? 0) / ((span.until - span.since) / 1000);
    },

    /** Closes and publishes a window now (tests, tooling); normally the timers do it. */
    publishWindow: (sessionId: string, window: number) => publisher.publishWindow(sessionId, window),
    /** Windows this instance still has to publish. */
    pendingWindows: () => publisher.pending(),

    /** Publishes every window still pending and stops the timers: call before Redis and the database close. */
    close: () => publisher.close(),
  };
}

export type ReactionsService = ReturnType<typeof createReactionsService>;
