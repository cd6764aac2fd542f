/**
 * Subscription streams with a snapshot first: subscribe to the topic, wait until the broker has
 * it, read the current state (with its seq), then deliver only events newer than what was sent.
 * Nothing published after the snapshot is missed, and nothing older is delivered after it.
 */
import type { Plugin } from 'graphql-yoga';
import type { TopicSubscription } from './event-bus.js';

/**
 * What a plugin's onSubscribe returns. envelop keeps it (and whatever its closures capture) for
 * the subscription's life, so plugins that need no per-subscription state return one shared
 * object: at 10,000 watchers, a closure and its context each is ~1 MB of heap per plugin.
 */
export type SubscribeHooks = Extract<Awaited<ReturnType<NonNullable<Plugin['onSubscribe']>>>, object>;

/**
 * An async iterator from a `step` that produces the next result, for streams over a topic
 * subscription. `finish` must close the subscription: return() (the transport's unsubscribe)
 * calls it at once, which also releases a step waiting for an event (an async generator's
 * return() would wait for that step instead), and a failing step finishes the stream first.
 */
export function cancellableStream<T>(
  step: () => Promise<IteratorResult<T>>,
  finish: () => IteratorResult<T>,
): AsyncIterableIterator<T> {
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      try {
        return await step();
      } catch (error) {
        finish();
        throw error;
      }
    },
    async return() {
      return finish();
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

export interface Sequenced {
  seq: number;
}

export function snapshotThenLive<T extends Sequenced>(
  subscription: TopicSubscription<T>,
  snapshot: () => Promise<T>,
): AsyncIterableIterator<T> {
  let lastSeq: number | undefined;
  let done = false;

  const finish = (): IteratorResult<T> => {
    done = true;
    subscription.close();
    return { value: undefined, done: true };
  };

  // Called by the transport when the client unsubscribes: closing the topic subscription also
  // releases a next() that is waiting for an event, so nothing leaks until the next publish.
  return cancellableStream(async () => {
    if (done) return { value: undefined, done: true };
    if (lastSeq === undefined) {
      await subscription.ready;
      const first = await snapshot();
      if (done) return { value: undefined, done: true };
      lastSeq = first.seq;
      return { value: first, done: false };
    }
    for (;;) {
      const result = await subscription.next();
      if (result.done || done) return finish();
      // Snapshots arrive from several instances; an older one than already delivered is stale.
      if (result.value.seq > lastSeq) {
        lastSeq = result.value.seq;
        return result;
      }
    }
  }, finish);
}

/**
 * A live event stream in seq order (offer transitions, reaction bursts). Events of one topic are
 * published by different instances, so they can reach Redis (and this subscriber) out of seq
 * order when two publishes race. Events
 * that arrive ahead of a missing seq are held up to `gapWaitMs` for it; after that the gap is
 * skipped (a publisher died between commit and publish) and anything older is dropped, so a
 * client always sees strictly increasing seqs. Bursts committed before the subscription was
 * live (seq <= `startAfter()`) are not delivered: the stream is live only, with no snapshot.
 */
export function inSeqOrder<T extends Sequenced>(
  subscription: TopicSubscription<T>,
  opts: { startAfter: () => Promise<number>; gapWaitMs: number; maxHeld?: number },
): AsyncIterableIterator<T> {
  const maxHeld = opts.maxHeld ?? 64;
  const held: T[] = []; // ascending seq
  let last: number | undefined;
  let gapDeadline: number | undefined;
  let incoming: Promise<IteratorResult<T>> | undefined;
  let done = false;

  const finish = (): IteratorResult<T> => {
    done = true;
    held.length = 0;
    subscription.close();
    return { value: undefined, done: true };
  };

  function hold(event: T): void {
    let i = held.length;
    while (i > 0 && held[i - 1]!.seq > event.seq) i -= 1;
    if (held[i - 1]?.seq === event.seq) return;
    held.splice(i, 0, event);
  }

  function refreshGap(): void {
    const head = held[0];
    if (!head || head.seq === last! + 1) gapDeadline = undefined;
    else gapDeadline ??= Date.now() + opts.gapWaitMs;
  }

  function timeout(ms: number, cancel: { timer?: NodeJS.Timeout }): Promise<'timeout'> {
    return new Promise((resolve) => {
      cancel.timer = setTimeout(() => resolve('timeout'), Math.max(0, ms));
    });
  }

  // Called by the transport when the client unsubscribes: closing the topic subscription also
  // releases a next() waiting for an event.
  return cancellableStream(async () => {
    if (done) return { value: undefined, done: true };
    if (last === undefined) {
      await subscription.ready;
      const start = await opts.startAfter();
      if (done) return { value: undefined, done: true };
      last = start;
    }
    for (;;) {
      const head = held[0];
      if (
        head &&
        (head.seq === last + 1 || held.length > maxHeld || (gapDeadline !== undefined && Date.now() >= gapDeadline))
      ) {
        held.shift();
        last = head.seq;
        gapDeadline = undefined;
        refreshGap();
        return { value: head, done: false };
      }
      incoming ??= subscription.next();
      let result: IteratorResult<T> | 'timeout';
      if (gapDeadline !== undefined) {
        const cancel: { timer?: NodeJS.Timeout } = {};
        result = await Promise.race([incoming, timeout(gapDeadline - Date.now(), cancel)]);
        clearTimeout(cancel.timer);
      } else {
        result = await incoming;
      }
      if (done) return { value: undefined, done: true };
      if (result === 'timeout') continue;
      incoming = undefined;
      if (result.done) return finish();
      if (result.value.seq <= last) continue; // from before the subscription, or a gap already skipped
      hold(result.value);
      refreshGap();
    }
  }, finish);
}

/** Reads now, then every `ms`; return() stops the timer at once. */
export function everyInterval<T>(read: () => Promise<T>, ms: number): AsyncIterableIterator<T> {
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  let done = false;
  let first = true;
  const iterator: AsyncIterableIterator<T> = {
    async next() {
      if (!first) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          timer = setTimeout(resolve, ms);
        });
      }
      first = false;
      if (done) return { value: undefined, done: true };
      return { value: await read(), done: false };
    },
    async return() {
      done = true;
      clearTimeout(timer);
      wake?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
