/**
 * The one place that decides memory or Redis. With REDIS_URL every piece of cross-instance state
 * lives in Redis (the bus's topics, counters, windows, presence entries: every instance sees every
 * other's); without it, in this process, which is exact for one instance. Each store is an
 * interface in its module with a memory and a Redis implementation side by side (centrifuge's
 * shape); modules receive the chosen one and never ask which it is.
 */
import { setMaxListeners } from 'node:events';
import type { Config } from './config.js';
import type { Logger } from './infra/logger.js';
import { isCluster, type RedisConnections } from './infra/redis.js';
import type { RateLimitStore } from './guards/rate-limit.js';
import { createMemoryLiveSubscriptionCounter, createMemoryRateLimitStore } from './guards/rate-limit.memory.js';
import { createRedisLiveSubscriptionCounter, createRedisRateLimitStore } from './guards/rate-limit.redis.js';
import type { LiveSubscriptionCounter } from './guards/subscription-limits.js';
import type { FraudStateStore } from './guards/fraud/fraud.store.js';
import { createMemoryFraudStore } from './guards/fraud/fraud.store.memory.js';
import { createRedisFraudStore } from './guards/fraud/fraud.store.redis.js';
import { createFallbackFraudStore } from './guards/fraud/fraud.store.fallback.js';
import { createFallbackRateLimitStore } from './guards/rate-limit.fallback.js';
import { createRedisFallback } from './infra/redis-fallback.js';
import type { ViewerCounter } from './modules/dashboard/dashboard.store.js';
import { createMemoryViewerCounter } from './modules/dashboard/dashboard.store.memory.js';
import { createRedisViewerCounter } from './modules/dashboard/dashboard.store.redis.js';
import type { TypingStore } from './modules/messaging/messaging.typing.store.js';
import { createMemoryTypingStore } from './modules/messaging/messaging.typing.store.memory.js';
import { createRedisTypingStore } from './modules/messaging/messaging.typing.store.redis.js';
import type { NotificationAudience } from './modules/notifications/notifications.store.js';
import { createMemoryNotificationAudience } from './modules/notifications/notifications.store.memory.js';
import { createRedisNotificationAudience } from './modules/notifications/notifications.store.redis.js';
import type { PresenceStore } from './modules/presence/presence.store.js';
import { createMemoryPresenceStore } from './modules/presence/presence.store.memory.js';
import { createRedisPresenceStore } from './modules/presence/presence.store.redis.js';
import type { ReactionStore } from './modules/reactions/reactions.store.js';
import { createMemoryReactionStore } from './modules/reactions/reactions.store.memory.js';
import { createRedisReactionStore } from './modules/reactions/reactions.store.redis.js';
import { createEventBus, type BusEventTarget, type EventBus } from './realtime/event-bus.js';
import { createBusRedisEventTarget } from './realtime/redis-event-target.js';
import type { ServerStatsStore } from './modules/ops/ops.stats.store.js';
import { createMemoryServerStatsStore } from './modules/ops/ops.stats.store.memory.js';
import { createRedisServerStatsStore } from './modules/ops/ops.stats.store.redis.js';
import type { GraphqlSseRelay, GraphqlSseStore } from './transport/graphql-sse.store.js';
import { createMemoryGraphqlSseStore } from './transport/graphql-sse.store.memory.js';
import { createRedisGraphqlSseRelay, createRedisGraphqlSseStore } from './transport/graphql-sse.store.redis.js';

export interface Stores {
  /** Reaction windows: every accepted reaction in exactly one published aggregate. */
  reactions: ReactionStore;
  /** Who is typing, with expiry (messaging stops its timers: messaging.close). */
  typing: TypingStore;
  /** Users with a live notifications stream (recipient fan-out). */
  notificationAudience: NotificationAudience;
  /** Connection entries with heartbeats; a dead instance's entries expire. */
  presence: PresenceStore;
  /** Fraud windows and decision counters. */
  fraud: FraudStateStore;
  /** Live tally watchers per competition (dashboard). */
  viewers: ViewerCounter;
  /** Rate-limit buckets and strikes: one atomic check per call. */
  rateLimit: RateLimitStore;
  /** Live subscriptions per user (the per-user cap). */
  liveSubscriptions: LiveSubscriptionCounter;
  /**
   * graphql-sse single-connection mode: reservations and which instance holds each stream; with
   * Redis, any instance may get a stream's requests and the relay forwards them to its holder.
   */
  graphqlSse: { store: GraphqlSseStore; relay?: GraphqlSseRelay };
  /** Each instance's latest sample for the admins' cluster view (serverStats). */
  serverStats: ServerStatsStore;
  /** Flushes and stops the stores that hold timers or buffered counters. */
  close(): Promise<void>;
}

export function createStores(deps: {
  redis: RedisConnections | undefined;
  config: Config;
  instanceId: string;
  logger: Logger;
}): Stores {
  const { redis, config, instanceId, logger } = deps;
  const closeAll = (stores: Omit<Stores, 'close'>) => async (): Promise<void> => {
    // Typing and presence are stopped by their services; these hold their own timers.
    await stores.fraud.close();
    await stores.viewers.close();
    await stores.liveSubscriptions.close();
    await stores.rateLimit.close();
    await stores.graphqlSse.relay?.close();
    await stores.graphqlSse.store.close(); // streams ended at the drain: their entries are deleted
  };
  if (redis) {
    const r = redis.publisher; // a plain command connection
    // Rate limits and fraud windows fail open with this instance's memory while Redis is away
    // (src/infra/redis-fallback.ts says why; RELIABILITY.md shows it).
    const guardFallback = createRedisFallback({
      redis: r,
      onSwitch: (local) =>
        local
          ? logger.error('redis unavailable: rate limits and fraud checks use this instance’s local state')
          : logger.warn('redis answers again: rate limits and fraud checks use the shared state'),
    });
    const stores = {
      reactions: createRedisReactionStore({ redis: r, windowMs: config.reactionWindowMs }),
      typing: createRedisTypingStore({
        redis: r,
        ttlMs: config.typingTtlMs,
        onError: (error) => logger.error('typing expiry sweep failed; retrying', { error }),
      }),
      notificationAudience: createRedisNotificationAudience({ pubsub: redis.pubsub }),
      presence: createRedisPresenceStore({ redis: r, offlineGraceMs: config.presenceOfflineGraceMs }),
      fraud: createFallbackFraudStore({
        shared: createRedisFraudStore({ redis: r }),
        local: createMemoryFraudStore(),
        fallback: guardFallback,
      }),
      viewers: createRedisViewerCounter({ redis: r, instanceId }),
      rateLimit: createFallbackRateLimitStore({
        shared: createRedisRateLimitStore({ redis: r, instanceId }),
        local: createMemoryRateLimitStore(),
        fallback: guardFallback,
      }),
      liveSubscriptions: createRedisLiveSubscriptionCounter({
        redis: r,
        instanceId,
        onError: (error) => logger.warn('live subscription count failed', { error }),
      }),
      graphqlSse: {
        store: createRedisGraphqlSseStore({
          redis: r,
          reservationTtlMs: config.graphqlSseReservationTtlMs,
          onError: (error) => logger.warn('graphql-sse stream refresh failed', { error }),
        }),
        relay: createRedisGraphqlSseRelay({
          pubsub: redis.pubsub,
          instanceId,
          onError: (message, details) => logger.error(message, details),
        }),
      },
      serverStats: createRedisServerStatsStore({ redis: r }),
    };
    return { ...stores, close: closeAll(stores) };
  }
  const stores = {
    reactions: createMemoryReactionStore({ windowMs: config.reactionWindowMs }),
    typing: createMemoryTypingStore({ ttlMs: config.typingTtlMs }),
    notificationAudience: createMemoryNotificationAudience(),
    presence: createMemoryPresenceStore({ offlineGraceMs: config.presenceOfflineGraceMs }),
    fraud: createMemoryFraudStore(),
    viewers: createMemoryViewerCounter(),
    rateLimit: createMemoryRateLimitStore(),
    liveSubscriptions: createMemoryLiveSubscriptionCounter(),
    graphqlSse: { store: createMemoryGraphqlSseStore({ reservationTtlMs: config.graphqlSseReservationTtlMs }) },
    serverStats: createMemoryServerStatsStore(),
  };
  return { ...stores, close: closeAll(stores) };
}

/**
 * The realtime bus: topics through Redis pubsub when configured (every instance's subscribers see
 * every publish; sharded on a cluster), else an in-process EventTarget.
 */
export function createBus(
  redis: Pick<RedisConnections, 'pubsub' | 'subscriber'> | undefined,
  logger: Logger,
): EventBus {
  if (!redis) {
    const eventTarget = new EventTarget();
    // Thousands of local subscribers to one topic (a session's watchers) are the normal case, not
    // a leak: Node would warn past 10 listeners per topic.
    setMaxListeners(0, eventTarget);
    return createEventBus({ eventTarget: eventTarget as BusEventTarget, barrier: () => Promise.resolve() });
  }
  const eventTarget = createBusRedisEventTarget({
    pubsub: redis.pubsub,
    ...(!isCluster(redis.subscriber) && { subscriber: redis.subscriber }),
    onPublishError: (error, topic, willRetry) =>
      logger.error(
        willRetry
          ? 'event bus publish failed; retrying'
          : 'event bus publish given up (resumable streams fill the gap from their history)',
        { topic, error },
      ),
    onSubscribeError: (error, topic) =>
      logger.error('event bus subscribe failed; sent again once Redis is ready', { topic, error }),
  });
  return createEventBus({ eventTarget, barrier: () => eventTarget.barrier() });
}
