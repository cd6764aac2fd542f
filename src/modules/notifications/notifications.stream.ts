/**
 * The notificationAdded stream without a cursor: the viewer's queued backlog first (in its own
 * order: priority, then age), then the live events after it, with no gap and no duplicate.
 *
 * The backlog is read together with the topic's current seq S (one transaction, FOR SHARE, so no
 * insert of the user is half-way): every notification with seq <= S is committed and in the
 * backlog if it still is queued, every later one is the live part's, which starts after S as a
 * resumable stream (src/realtime/resume.ts: in seq order, gaps filled from the table). The backlog
 * is read in pages, lazily, as the client consumes it, so a large backlog costs neither memory nor
 * a long first read.
 */
import { cancellableStream, type Sequenced } from '../../realtime/stream.js';

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
  /** The live stream after `seq` (opened once the first page was read). */
  live: (seq: number) => Promise<AsyncIterator<T>>;
  /** Called once if the stream ends before the live part was opened (which then owns the cleanup). */
  abandon: () => void;
}

export async function backlogThenLive<T extends Sequenced>(
  opts: BacklogThenLiveOptions<T>,
): Promise<AsyncIterableIterator<T>> {
  let first: BacklogStart<T>;
  let live: AsyncIterator<T>;
  try {
    first = await opts.start();
    live = await opts.live(first.seq);
  } catch (error) {
    opts.abandon();
    throw error;
  }
  const seq = first.seq;
  let page = first.page;
  let more = page.length >= opts.pageSize;
  let last: T | undefined;
  let done = false;

  const finish = (): IteratorResult<T> => {
    if (!done) {
      done = true;
      page = [];
      void live.return?.();
    }
    return { value: undefined, done: true };
  };

  // The transport's unsubscribe: closing the live stream releases a waiting next().
  return cancellableStream(async () => {
    for (;;) {
      if (done) return { value: undefined, done: true };
      const item = page.shift();
      if (item !== undefined) {
        last = item;
        return { value: item, done: false };
      }
      if (more && last !== undefined) {
        page = await opts.nextPage(last, seq);
        more = page.length >= opts.pageSize;
        continue;
      }
      more = false;
      const result = await live.next();
      if (done || result.done) return finish();
      return result;
    }
  }, finish);
}
