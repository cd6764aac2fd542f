/**
 * Subscription streams with a snapshot first: subscribe to the topic, wait until the broker has
 * it, read the current state (with its seq), then deliver only events newer than what was sent.
 * Nothing published after the snapshot is missed, and nothing older is delivered after it.
 */
import type { TopicSubscription } from './event-bus.js';

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

  const iterator: AsyncIterableIterator<T> = {
    async next() {
      if (done) return { value: undefined, done: true };
      try {
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
      } catch (error) {
        finish();
        throw error;
      }
    },
    // Called by the transport when the client unsubscribes: closing the topic subscription also
    // releases a next() that is waiting for an event, so nothing leaks until the next publish.
    async return() {
      return finish();
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
