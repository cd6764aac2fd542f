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
 * publish: report it and serve on.
 */
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { Redis } from 'ioredis';
import type { BusEventTarget } from './event-bus.js';

export function createBusRedisEventTarget(deps: {
  publisher: Redis;
  subscriber: Redis;
  onPublishError: (error: unknown, topic: string) => void;
}): BusEventTarget {
  const { publisher, onPublishError } = deps;
  const target = createRedisEventTarget({ publishClient: publisher, subscribeClient: deps.subscriber });
  return {
    addEventListener: (type, callback, options) => target.addEventListener(type, callback, options),
    removeEventListener: (type, callback, options) => target.removeEventListener(type, callback, options),
    dispatchEvent(event) {
      // The library's wire format: JSON, '' for no detail (its subscriber parses it back).
      const message = event.detail === undefined ? '' : JSON.stringify(event.detail);
      publisher.publish(event.type, message).catch((error: unknown) => onPublishError(error, event.type));
      return true;
    },
  };
}
