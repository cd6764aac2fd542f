/**
 * The notificationAdded stream: a backlog first, then live events, with no gap and no duplicate.
 *
 * The caller's topic subscription is live on the broker (`ready`) before the backlog is read, and
 * the backlog is read together with the topic's current seq S (FOR SHARE, so no insert of the
 * user is half-way): every notification with seq <= S is committed and in the backlog if it is
 * still unread, every later one arrives live with seq > S. The live part runs through inSeqOrder
 * (started after S), so it is in seq order even when instances publish out of order, and it skips
 * anything the backlog already delivered. The backlog is read in pages, lazily, as the client
 * consumes it, so a large backlog costs neither memory nor a long first read.
 */
import type { TopicSubscription } from '../../realtime/event-bus.js';
import { cancellableStream, inSeqOrder, type Sequenced } from '../../realtime/stream.js';

export interface BacklogStart<T> {
  /** The topic's seq when the first page was read: live events must be newer. */
  seq: number;
  page: T[];
}

export interface BacklogThenLiveOptions<T> {
  /** Reads the first backlog page and the current seq, in one transaction. */
  start: () => Promise<BacklogStart<T>>;
  /** The page after `last` (same order), of items with seq <= `seq`. */
  nextPage: (last: T, seq: number) => Promise<T[]>;
  pageSize: number;
  keyOf: (item: T) => string;
  /** Live items failing this are skipped (e.g. expired by the time they arrive). */
  keep?: (item: T) => boolean;
  gapWaitMs: number;
}

export function backlogThenLive<T extends Sequenced>(
  subscription: TopicSubscription<T>,
  opts: BacklogThenLiveOptions<T>,
): AsyncIterableIterator<T> {
  let started = false;
  let done = false;
  let seq = 0;
  let page: T[] = [];
  let more = false;
  let last: T | undefined;
  const delivered = new Set<string>();
  let live: AsyncIterableIterator<T> | undefined;

  const finish = (): IteratorResult<T> => {
    done = true;
    page = [];
    if (live) void live.return?.();
    subscription.close();
    return { value: undefined, done: true };
  };

  // The transport's unsubscribe: closing the topic subscription releases a waiting next().
  return cancellableStream(async () => {
    if (done) return { value: undefined, done: true };
    if (!started) {
      await subscription.ready;
      const first = await opts.start();
      if (done) return { value: undefined, done: true };
      seq = first.seq;
      page = first.page;
      more = page.length >= opts.pageSize;
      live = inSeqOrder(subscription, { startAfter: async () => seq, gapWaitMs: opts.gapWaitMs });
      started = true;
    }
    for (;;) {
      const item = page.shift();
      if (item !== undefined) {
        last = item;
        const key = opts.keyOf(item);
        if (delivered.has(key)) continue;
        delivered.add(key);
        return { value: item, done: false };
      }
      if (more && last !== undefined) {
        page = await opts.nextPage(last, seq);
        if (done) return { value: undefined, done: true };
        more = page.length >= opts.pageSize;
        continue;
      }
      more = false;
      const result = await live!.next();
      if (done || result.done) return finish();
      if (delivered.has(opts.keyOf(result.value))) continue;
      if (opts.keep && !opts.keep(result.value)) continue;
      return result;
    }
  }, finish);
}
