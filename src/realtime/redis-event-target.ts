/**
 * The event bus across instances, shaped after @graphql-yoga/redis-event-target (one SUBSCRIBE
 * per topic, ref-counted; the same wire format), over src/infra/redis.ts's pub/sub, so a topic is
 * PUBLISH/SUBSCRIBE on one server and SPUBLISH/SSUBSCRIBE on a Redis Cluster (the library knows
 * only the first). `barrier()` waits for the subscribe commands themselves: on a cluster they go
 * to per-shard connections that no PING reaches.
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
 */
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
  /** `willRetry`: false once the publish is given up (retries spent or too many pending). */
  onPublishError: (error: unknown, topic: string, willRetry: boolean) => void;
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
  const track = (command: Promise<void>): void => {
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
        track(pubsub.subscribe(topic));
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
    dispatchEvent(event) {
      const detail = (event as CustomEvent).detail as unknown;
      publish(event.type, detail === undefined ? '' : JSON.stringify(detail), 0);
      return true;
    },
    async barrier() {
      await Promise.all([...inFlight]);
    },
  };
}
