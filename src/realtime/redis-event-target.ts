/**
 * The event bus across instances. On one Redis server, subscriptions go through
 * @graphql-yoga/redis-event-target (one SUBSCRIBE per topic, ref-counted), as the product is built
 * on it. On a Redis Cluster they cannot: the library knows only SUBSCRIBE/PUBLISH, and a cluster
 * needs sharded pub/sub (SSUBSCRIBE/SPUBLISH, each topic on its shard), so there the same shape
 * (ref-counted topics, the library's wire format, so instances interoperate) runs over
 * src/infra/redis.ts's sharded pub/sub. `barrier()` resolves once the subscriptions requested so
 * far are live: on one server a PING sent after them on the subscriber connection (answered in
 * order), on a cluster the SSUBSCRIBE replies themselves (no PING reaches the per-shard
 * connections).
 *
 * Why not the library's dispatchEvent: it sends PUBLISH and drops the promise, so a PUBLISH that
 * fails (Redis unreachable past the client's maxRetriesPerRequest, a user without the permission)
 * is an unhandled rejection, and Node ends the process: every subscriber of the instance is cut
 * off and every request in flight fails, for one lost publish. A failed publish loses no event of
 * a resumable stream — each is committed with its history first, and subscribers fill the gap from
 * it when the topic's next event arrives (resume.ts) — and snapshot streams catch up at their next
 * publish: report it and serve on. A failed publish is retried a few times with backoff (a Redis
 * failover takes seconds), so the topic's last event also arrives without waiting for a next one;
 * late is harmless, subscribers order by seq and drop what they already have. Retries are
 * bounded in number and in memory; what is left is the transactional outbox's job (issue 15).
 * The library's SUBSCRIBE is fire-and-forget too: withHandledSubscribes below.
 */
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { Redis } from 'ioredis';
import type { RedisPubSub } from '../infra/redis.js';
import type { BusEventTarget } from './event-bus.js';

const RETRY_DELAYS_MS = [200, 500, 1_000, 2_000, 5_000];
const MAX_PENDING_RETRIES = 10_000;

type Listener = ((event: CustomEvent) => void) | { handleEvent(event: CustomEvent): void };

export interface BusRedisEventTarget extends BusEventTarget {
  /** Resolves once every subscription requested so far is acknowledged by the server. */
  barrier(): Promise<void>;
}

export function createBusRedisEventTarget(deps: {
  /** Classic (one server) or sharded (a cluster) pub/sub: src/infra/redis.ts decides. */
  pubsub: RedisPubSub;
  /** The subscriber connection of a single server, which the library subscribes on (classic mode). */
  subscriber?: Redis;
  /** `willRetry`: false once the publish is given up (retries spent or too many pending). */
  onPublishError: (error: unknown, topic: string, willRetry: boolean) => void;
  /**
   * A SUBSCRIBE failed (Redis away past the client's retries). On one server it is sent again once
   * Redis is ready (withHandledSubscribes); on a cluster it is reported, and barrier() rejects.
   */
  onSubscribeError?: (error: unknown, topic: string) => void;
}): BusRedisEventTarget {
  const { pubsub, onPublishError } = deps;
  let pending = 0;
  const publish = (topic: string, message: string, attempt: number): void => {
    pubsub.publish(topic, message).then(
      () => undefined,
      (error: unknown) => {
        const delay = RETRY_DELAYS_MS[attempt];
        const willRetry = delay !== undefined && pending < MAX_PENDING_RETRIES;
        onPublishError(error, topic, willRetry);
        if (!willRetry) return;
        pending += 1;
        setTimeout(() => {
          pending -= 1;
          publish(topic, message, attempt + 1);
        }, delay).unref();
      },
    );
  };

  const dispatchEvent = (event: Event): boolean => {
    // The library's wire format: JSON, '' for no detail (its subscriber parses it back).
    const detail = (event as CustomEvent).detail as unknown;
    publish(event.type, detail === undefined ? '' : JSON.stringify(detail), 0);
    return true;
  };

  if (pubsub.mode === 'classic' && deps.subscriber) {
    const subscriber = deps.subscriber;
    const target = createRedisEventTarget({
      // Publishing is ours (above); the library only subscribes.
      publishClient: subscriber,
      subscribeClient: withHandledSubscribes(subscriber, deps.onSubscribeError),
    });
    return {
      addEventListener: (type, callback, options) => target.addEventListener(type, callback, options),
      removeEventListener: (type, callback, options) => target.removeEventListener(type, callback, options),
      dispatchEvent,
      // Replies come in order on one connection: the PING's comes after every SUBSCRIBE sent before it.
      barrier: async () => void (await subscriber.ping()),
    };
  }

  // One SUBSCRIBE per topic, ref-counted by its listeners (as @graphql-yoga/redis-event-target).
  const listeners = new Map<string, Set<Listener>>();
  /** Subscribe commands not yet acknowledged: what barrier() waits for. */
  const inFlight = new Set<Promise<void>>();
  pubsub.onMessage((channel, message) => {
    const callbacks = listeners.get(channel);
    if (!callbacks) return; // another listener's channel (the graphql-sse relay shares the connection)
    // The library's wire format, kept for mixed-version rollouts: JSON, '' for no detail.
    const event = new CustomEvent(channel, { detail: message === '' ? null : (JSON.parse(message) as unknown) });
    for (const callback of callbacks) {
      if (typeof callback === 'function') callback(event);
      else callback.handleEvent(event);
    }
  });
  const track = (command: Promise<void>, topic: string): void => {
    command.catch((error: unknown) => deps.onSubscribeError?.(error, topic));
    const settled = command.finally(() => inFlight.delete(settled));
    settled.catch(() => undefined); // reported through barrier(), to whoever waits on it
    inFlight.add(settled);
  };

  return {
    addEventListener(topic, callback) {
      if (!callback) return;
      let callbacks = listeners.get(topic);
      if (!callbacks) {
        listeners.set(topic, (callbacks = new Set()));
        track(pubsub.subscribe(topic), topic);
      }
      callbacks.add(callback as Listener);
    },
    removeEventListener(topic, callback) {
      const callbacks = listeners.get(topic);
      if (!callbacks || !callback) return;
      callbacks.delete(callback as Listener);
      if (callbacks.size > 0) return;
      listeners.delete(topic);
      // A failed UNSUBSCRIBE leaves a channel whose messages are ignored (no listener).
      pubsub.unsubscribe(topic).catch(() => undefined);
    },
    dispatchEvent,
    async barrier() {
      await Promise.all([...inFlight]);
    },
  };
}

/**
 * The subscriber connection as the library sees it, with its SUBSCRIBEs handled. The library sends
 * SUBSCRIBE and drops the promise: when Redis stays away longer than the client's
 * maxRetriesPerRequest, the rejection is unhandled and Node ends the process (issue 15: no process
 * exits during an outage). Here a failed SUBSCRIBE is reported and sent again when the connection
 * is next ready, unless the topic was unsubscribed meanwhile: ioredis resubscribes only the
 * channels whose SUBSCRIBE succeeded, so without this the topic would stay deaf on this instance.
 */
function withHandledSubscribes(subscriber: Redis, onError?: (error: unknown, topic: string) => void): Redis {
  const wanted = new Set<string>();
  /** Topics whose SUBSCRIBE failed, sent again (one listener for all of them) once Redis is ready. */
  const failed = new Set<string>();
  const retry = (): void => {
    const topics = [...failed].filter((topic) => wanted.has(topic));
    failed.clear();
    for (const topic of topics) void subscribe(topic);
  };
  const subscribe = (topic: string): Promise<unknown> => {
    const sent = subscriber.subscribe(topic);
    sent.catch((error: unknown) => {
      onError?.(error, topic);
      if (failed.size === 0) subscriber.once('ready', retry);
      failed.add(topic);
    });
    return sent;
  };
  return new Proxy(subscriber, {
    get(target, property) {
      if (property === 'subscribe')
        return (topic: string) => {
          wanted.add(topic);
          return subscribe(topic);
        };
      if (property === 'unsubscribe')
        return (topic: string) => {
          wanted.delete(topic);
          const sent = target.unsubscribe(topic);
          sent.catch(() => undefined); // nothing to redo: a reconnect does not resubscribe it
          return sent;
        };
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}
