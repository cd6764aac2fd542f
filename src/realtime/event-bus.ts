/**
 * A typed publish/subscribe over an EventTarget: in-process (`new EventTarget()`) or Redis
 * (redis-event-target.ts, chosen in stores.ts). Unlike Yoga's createPubSub it registers
 * the listener eagerly and exposes `ready`, which resolves once the subscription is live on the
 * broker. Reading a snapshot after `ready` and then draining the subscription leaves no gap
 * between "state read" and "events received".
 */
import type { TypedEvent, TypedEventTarget } from '@graphql-yoga/typed-event-target';
import { topicName, type RealtimeEvent, type TopicKind, type TopicMap } from './topics.js';

export type BusEventTarget = TypedEventTarget<TypedEvent>;

export interface SubscribeOptions {
  /** Keep only the newest undelivered event: for topics whose events are full snapshots. */
  conflate?: boolean;
  /** Undelivered events kept before the subscriber is cut off as too slow. */
  maxBuffer?: number;
}

export interface TopicSubscription<T> extends AsyncIterableIterator<T> {
  /** Resolves when the broker has acknowledged the subscription. */
  readonly ready: Promise<void>;
  close(): void;
}

export interface EventBus {
  publish<K extends TopicKind>(kind: K, entityId: string, event: RealtimeEvent<TopicMap[K]>): void;
  subscribe<K extends TopicKind>(
    kind: K,
    entityId: string,
    options?: SubscribeOptions,
  ): TopicSubscription<RealtimeEvent<TopicMap[K]>>;
  /** Live subscriptions on this instance. */
  size(): number;
  /** Ends every live subscription (their streams complete): used at shutdown. */
  closeAll(): void;
}

export class SlowSubscriberError extends Error {
  constructor(topic: string, maxBuffer: number) {
    super(`subscriber to ${topic} fell ${maxBuffer} events behind and was disconnected`);
    this.name = 'SlowSubscriberError';
  }
}

const DEFAULT_MAX_BUFFER = 10_000;

export function createEventBus(deps: {
  eventTarget: BusEventTarget;
  /** Resolves once every subscription requested so far is live (the Redis target's barrier()). */
  barrier: () => Promise<void>;
}): EventBus {
  const { eventTarget, barrier } = deps;
  const live = new Set<TopicSubscription<unknown>>();
  return {
    publish(kind, entityId, event) {
      eventTarget.dispatchEvent(new CustomEvent(topicName(kind, entityId), { detail: event }));
    },
    subscribe(kind, entityId, options = {}) {
      const subscription = subscribeTopic<RealtimeEvent<TopicMap[typeof kind]>>(
        eventTarget,
        topicName(kind, entityId),
        barrier,
        options,
        () => live.delete(subscription),
      );
      live.add(subscription);
      return subscription;
    },
    size: () => live.size,
    closeAll() {
      for (const subscription of [...live]) subscription.close();
    },
  };
}

function subscribeTopic<T>(
  target: BusEventTarget,
  topic: string,
  barrier: () => Promise<void>,
  options: SubscribeOptions,
  onClose: () => void,
): TopicSubscription<T> {
  const { conflate = false, maxBuffer = DEFAULT_MAX_BUFFER } = options;
  const queue: T[] = [];
  let waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  let failure: Error | undefined;
  let closed = false;

  const listener = (event: TypedEvent): void => {
    if (closed) return;
    const value = event.detail as T;
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      w.resolve({ value, done: false });
    } else if (conflate) {
      queue[0] = value;
    } else if (queue.length >= maxBuffer) {
      failure = new SlowSubscriberError(topic, maxBuffer);
      close();
    } else {
      queue.push(value);
    }
  };

  function close(): void {
    if (closed) return;
    closed = true;
    target.removeEventListener(topic, listener);
    onClose();
    const w = waiting;
    waiting = undefined;
    if (w) failure ? w.reject(failure) : w.resolve({ value: undefined, done: true });
  }

  target.addEventListener(topic, listener);
  // After addEventListener: the barrier covers the subscribe it may just have sent.
  const ready = barrier();
  // Observed so an early close() does not leave an unhandled rejection behind.
  ready.catch(() => undefined);

  const subscription: TopicSubscription<T> = {
    ready,
    close,
    next() {
      if (queue.length > 0) return Promise.resolve({ value: queue.shift() as T, done: false });
      if (failure) return Promise.reject(failure);
      if (closed) return Promise.resolve({ value: undefined, done: true });
      return new Promise((resolve, reject) => {
        waiting = { resolve, reject };
      });
    },
    return() {
      queue.length = 0;
      close();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return subscription;
    },
  };
  return subscription;
}
