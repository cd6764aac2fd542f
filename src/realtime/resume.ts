/**
 * Resumable event streams: every event after a client's cursor exactly once and in seq order,
 * then the live ones, on any instance; RESYNC_REQUIRED at once when that cannot be promised.
 *
 * The live part comes from the bus (fast), the rest from the topic's history (durable, shared by
 * every instance): the events a reconnecting client missed, and any seq the bus did not bring in
 * order within `gapWaitMs` (another instance's publish is late, or its publisher died between
 * commit and publish). Because every seq of a resumable topic is committed together with its
 * history entry (event-log.ts, or the domain's own table), a seq the history lacks means it is no
 * longer kept: the stream fails with RESYNC_REQUIRED rather than skip it. Never a silent gap.
 *
 * A subscriber the bus cut off for falling behind (SlowSubscriberError) is not lost either: the
 * stream subscribes again and catches up from the history.
 */
import { badInput, resyncRequired } from '../errors.js';
import { SlowSubscriberError, type TopicSubscription } from './event-bus.js';
import { cancellableStream } from './stream.js';
import type { RealtimeEvent } from './topics.js';

/** Where the events of one topic are kept for resuming. */
export interface TopicHistory<T> {
  /** Events with afterSeq < seq <= upTo, ascending, at most `limit`; what is no longer kept is absent. */
  read(afterSeq: number, upTo: number, limit: number): Promise<RealtimeEvent<T>[]>;
  /** The topic's latest committed seq (0: nothing published yet). */
  latest(): Promise<number>;
}

export interface ResumeOptions<T> {
  /** Opens a live subscription to the topic; called again if the bus cuts a slow one off. */
  subscribe: () => TopicSubscription<RealtimeEvent<T>>;
  /** A subscription `subscribe` already opened (its readiness is awaited here). */
  initial?: TopicSubscription<RealtimeEvent<T>>;
  history: TopicHistory<T>;
  /** The client's cursor (the last seq it processed); null or undefined: live from now. */
  afterSeq: number | null | undefined;
  /** Events this subscriber does not get; they still advance its position. */
  skip?: (event: RealtimeEvent<T>) => boolean;
  /** History rows read per page. */
  pageSize?: number;
  /** How long an event that arrived ahead of a missing seq waits for it on the bus before the history fills the gap. */
  gapWaitMs?: number;
  /** Events held while waiting for a missing seq before the history fills the gap at once. */
  maxHeld?: number;
  /** Called once when the stream ends, however it ends. */
  onFinish?: () => void;
}

export const MAX_AFTER_SEQ = 2_147_483_647;

/** A cursor argument as clients send it: null/undefined = none; otherwise a non-negative integer. */
export function validateAfterSeq(afterSeq: number | null | undefined, field = 'afterSeq'): number | null {
  if (afterSeq === null || afterSeq === undefined) return null;
  if (!Number.isInteger(afterSeq) || afterSeq < 0 || afterSeq > MAX_AFTER_SEQ)
    throw badInput(field, `${field} must be an integer ≥ 0`);
  return afterSeq;
}

interface Start<T> {
  last: number;
  upTo: number;
  page: RealtimeEvent<T>[];
}

/**
 * Where a stream starts: after the client's cursor (checked against the history now, so an
 * unservable cursor fails before the stream starts) or after the topic's latest seq.
 */
async function startAt<T>(history: TopicHistory<T>, afterSeq: number | null, pageSize: number): Promise<Start<T>> {
  const latest = await history.latest();
  if (afterSeq === null) return { last: latest, upTo: latest, page: [] };
  if (afterSeq > latest) throw resyncRequired('AHEAD', afterSeq, latest);
  if (afterSeq === latest) return { last: afterSeq, upTo: latest, page: [] };
  const page = await history.read(afterSeq, latest, pageSize);
  if (page[0]?.seq !== afterSeq + 1) throw resyncRequired('NOT_KEPT', afterSeq, latest);
  return { last: afterSeq, upTo: latest, page };
}

/**
 * The page of the history after `after`, which must start exactly at after + 1. Reads it and
 * returns it; RESYNC_REQUIRED when the history no longer has that seq.
 */
async function pageAfter<T>(
  history: TopicHistory<T>,
  after: number,
  upTo: number,
  pageSize: number,
): Promise<RealtimeEvent<T>[]> {
  const page = await history.read(after, upTo, pageSize);
  if (page[0]?.seq !== after + 1) throw resyncRequired('NOT_KEPT', after, upTo);
  return page;
}

/**
 * Opens the stream: resolves once the live subscription is confirmed by the broker and the cursor
 * was checked, so a RESYNC_REQUIRED (or BAD_USER_INPUT) is the subscription's answer, not a
 * later event. `return()` (the client unsubscribed) closes the live subscription at once.
 */
export async function resumableStream<T>(options: ResumeOptions<T>): Promise<AsyncIterableIterator<RealtimeEvent<T>>> {
  const { history, skip, pageSize = 100, gapWaitMs = 150, maxHeld = 256 } = options;
  const afterSeq = validateAfterSeq(options.afterSeq);
  let subscription = options.initial ?? options.subscribe();
  let start: Start<T>;
  try {
    await subscription.ready;
    start = await startAt(history, afterSeq, pageSize);
  } catch (error) {
    subscription.close();
    options.onFinish?.();
    throw error;
  }

  let { last, upTo, page } = start;
  /** Live events ahead of `last + 1`, ascending, no duplicates. */
  const held: RealtimeEvent<T>[] = [];
  let gapDeadline: number | undefined;
  let incoming: Promise<IteratorResult<RealtimeEvent<T>>> | undefined;
  let done = false;

  const finish = (): IteratorResult<RealtimeEvent<T>> => {
    if (!done) {
      done = true;
      page = [];
      held.length = 0;
      subscription.close();
      options.onFinish?.();
    }
    return { value: undefined, done: true };
  };

  function hold(event: RealtimeEvent<T>): void {
    let i = held.length;
    while (i > 0 && held[i - 1]!.seq > event.seq) i -= 1;
    if (held[i - 1]?.seq === event.seq) return;
    held.splice(i, 0, event);
  }

  /** Waits for the next live event, or until the gap deadline; 'timeout' then. */
  async function nextLive(): Promise<IteratorResult<RealtimeEvent<T>> | 'timeout'> {
    incoming ??= subscription.next();
    if (gapDeadline === undefined) {
      const result = await incoming;
      incoming = undefined;
      return result;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, gapDeadline! - Date.now()))),
    );
    try {
      const result = await Promise.race([incoming, timeout]);
      if (result !== 'timeout') incoming = undefined;
      return result;
    } finally {
      clearTimeout(timer);
    }
  }

  return cancellableStream(async () => {
    for (;;) {
      if (done) return { value: undefined, done: true };
      // 1. What the history holds, in order.
      const replayed = page.shift();
      if (replayed) {
        if (replayed.seq <= last) continue;
        if (replayed.seq !== last + 1) throw resyncRequired('NOT_KEPT', last, upTo);
        last = replayed.seq;
        if (skip?.(replayed)) continue;
        return { value: replayed, done: false };
      }
      if (last < upTo) {
        page = await pageAfter(history, last, upTo, pageSize);
        continue;
      }
      // 2. Live events, in seq order.
      while (held.length > 0 && held[0]!.seq <= last) held.shift();
      const head = held[0];
      if (head?.seq === last + 1) {
        held.shift();
        gapDeadline = undefined;
        last = head.seq;
        if (skip?.(head)) continue;
        return { value: head, done: false };
      }
      if (head) {
        gapDeadline ??= Date.now() + gapWaitMs;
        if (Date.now() >= gapDeadline || held.length > maxHeld) {
          // The missing seqs are committed (a later one is): the history has them.
          gapDeadline = undefined;
          upTo = head.seq - 1;
          continue;
        }
      }
      let result: IteratorResult<RealtimeEvent<T>> | 'timeout';
      try {
        result = await nextLive();
      } catch (error) {
        if (!(error instanceof SlowSubscriberError) || done) throw error;
        // Cut off for falling behind: subscribe again, then catch up from the history.
        incoming = undefined;
        held.length = 0;
        gapDeadline = undefined;
        subscription = options.subscribe();
        await subscription.ready;
        upTo = Math.max(upTo, await history.latest());
        continue;
      }
      if (done) return { value: undefined, done: true };
      if (result === 'timeout') continue;
      if (result.done) return finish(); // the bus closed it (shutdown)
      if (result.value.seq > last) hold(result.value);
    }
  }, finish);
}

/** What a poller gets: the events after its cursor, and the cursor to send next time. */
export interface EventPage<T> {
  /** Oldest first. */
  events: RealtimeEvent<T>[];
  /** Send as afterSeq next time: the last seq this page covered (events the viewer does not get included). */
  cursor: number;
  /** The topic's latest seq when this page was read. */
  latestSeq: number;
  /** More events follow `cursor`: ask again at once. */
  hasMore: boolean;
}

export const PAGE_DEFAULT = 50;
export const PAGE_MAX = 100;

/**
 * The polling counterpart of resumableStream, with the same meaning: every event after the cursor
 * exactly once across consecutive pages, RESYNC_REQUIRED when that cannot be promised. Without a
 * cursor: no events and the latest seq (poll from there; read the current state with the normal
 * queries first).
 */
export async function readEventPage<T>(
  history: TopicHistory<T>,
  args: { afterSeq?: number | null; first?: number | null },
  skip?: (event: RealtimeEvent<T>) => boolean,
): Promise<EventPage<T>> {
  const first = args.first ?? PAGE_DEFAULT;
  if (!Number.isInteger(first) || first < 1 || first > PAGE_MAX)
    throw badInput('first', `first must be between 1 and ${PAGE_MAX}`);
  const afterSeq = validateAfterSeq(args.afterSeq);
  const latest = await history.latest();
  if (afterSeq === null) return { events: [], cursor: latest, latestSeq: latest, hasMore: false };
  if (afterSeq > latest) throw resyncRequired('AHEAD', afterSeq, latest);
  if (afterSeq === latest) return { events: [], cursor: latest, latestSeq: latest, hasMore: false };
  const rows = await history.read(afterSeq, latest, first);
  let expected = afterSeq + 1;
  for (const row of rows) {
    if (row.seq !== expected) throw resyncRequired('NOT_KEPT', expected - 1, latest);
    expected += 1;
  }
  if (rows.length === 0) throw resyncRequired('NOT_KEPT', afterSeq, latest);
  const cursor = rows[rows.length - 1]!.seq;
  return { events: skip ? rows.filter((e) => !skip(e)) : rows, cursor, latestSeq: latest, hasMore: cursor < latest };
}
