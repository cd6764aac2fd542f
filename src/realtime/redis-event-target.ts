/**
 * The event bus across instances: @graphql-yoga/redis-event-target for subscribing (one SUBSCRIBE
 * per topic, ref-counted), with our own PUBLISH whose failure is handled.
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
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { Redis } from 'ioredis';
import type { BusEventTarget } from './event-bus.js';

const RETRY_DELAYS_MS = [200, 500, 1_000, 2_000, 5_000];
const MAX_PENDING_RETRIES = 10_000;

export function createBusRedisEventTarget(deps: {
  publisher: Redis;
  subscriber: Redis;
  /** `willRetry`: false once the publish is given up (retries spent or too many pending). */
  onPublishError: (error: unknown, topic: string, willRetry: boolean) => void;
  /** A SUBSCRIBE failed (Redis away past the client's retries); it is sent again once Redis is ready. */
  onSubscribeError?: (error: unknown, topic: string) => void;
}): BusEventTarget {
  const { publisher, onPublishError } = deps;
  let pending = 0;
  const publish = (topic: string, message: string, attempt: number): void => {
    publisher.publish(topic, message).then(
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
  const target = createRedisEventTarget({
    publishClient: publisher,
    subscribeClient: withHandledSubscribes(deps.subscriber, deps.onSubscribeError),
  });
  return {
    addEventListener: (type, callback, options) => target.addEventListener(type, callback, options),
    removeEventListener: (type, callback, options) => target.removeEventListener(type, callback, options),
    dispatchEvent(event) {
      // The library's wire format: JSON, '' for no detail (its subscriber parses it back).
      const message = event.detail === undefined ? '' : JSON.stringify(event.detail);
      publish(event.type, message, 0);
      return true;
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
