/**
 * The wiring point: infrastructure, stores, services, the Yoga pipeline and both socket
 * transports. The only place that chooses between embedded and external implementations
 * (PGlite or PostgreSQL, in-process or Redis pubsub). Tests and main.ts both use createApp().
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import type { Services } from './context.js';
import { createRemoteJWKSet } from 'jose';
import { createUserAccess } from './guards/access.js';
import { createAuthenticator, createTokenIssuer, resolveJwtSecret } from './guards/auth.js';
import { useStreamGuards } from './guards/streams.js';
import { createAuthService } from './modules/auth/auth.service.js';
import { createGuards } from './guards/guards.js';
import { useQueryLimits } from './guards/limits.js';
import { createRateLimiter, escalationFromConfig, rateRulesFromConfig } from './guards/rate-limit.js';
import { createMemoryLiveSubscriptionCounter, createMemoryRateLimitStore } from './guards/rate-limit.memory.js';
import { createRedisLiveSubscriptionCounter, createRedisRateLimitStore } from './guards/rate-limit.redis.js';
import { useSubscriptionLimits } from './guards/subscription-limits.js';
import { createAccountAge, createdAtFromUsers } from './guards/fraud/account-age.js';
import { createFraudEngine } from './guards/fraud/fraud.engine.js';
import { createFraudGuard, fraudGuardDisabled } from './guards/fraud/fraud.guard.js';
import { createMemoryFraudStore } from './guards/fraud/fraud.store.memory.js';
import { createRedisFraudStore } from './guards/fraud/fraud.store.redis.js';
import { createFraudService } from './modules/fraud/fraud.service.js';
import { openDatabase, type Database } from './infra/database.js';
import { createLogger, type Logger } from './infra/logger.js';
import { assertPortFree, listenError } from './infra/port.js';
import { connectRedis, type RedisConnections } from './infra/redis.js';
import { createCompetitionsService } from './modules/competitions/competitions.service.js';
import { createUserRecords, createUsersService } from './modules/users/users.service.js';
import { createReactionsService } from './modules/reactions/reactions.service.js';
import { createMemoryReactionStore } from './modules/reactions/reactions.store.memory.js';
import { createSessionsService } from './modules/sessions/sessions.service.js';
import { createRedisReactionStore } from './modules/reactions/reactions.store.redis.js';
import { createTallyPublisher } from './modules/voting/voting.events.js';
import { createVotingService } from './modules/voting/voting.service.js';
import { createOffersService } from './modules/offers/offers.service.js';
import { createInvestmentPoolService } from './modules/offers/pool.service.js';
import { createDashboardService } from './modules/dashboard/dashboard.service.js';
import { useTallyViewerCount } from './modules/dashboard/dashboard.plugin.js';
import { createMemoryViewerCounter } from './modules/dashboard/dashboard.store.memory.js';
import { createRedisViewerCounter } from './modules/dashboard/dashboard.store.redis.js';
import { createMessagingService } from './modules/messaging/messaging.service.js';
import { createMemoryTypingStore } from './modules/messaging/messaging.typing.store.memory.js';
import { createRedisTypingStore } from './modules/messaging/messaging.typing.store.redis.js';
import { createNotificationsService } from './modules/notifications/notifications.service.js';
import { createNotificationTriggers } from './modules/notifications/notifications.triggers.js';
import { createMemoryNotificationAudience } from './modules/notifications/notifications.store.memory.js';
import { createRedisNotificationAudience } from './modules/notifications/notifications.store.redis.js';
import { createChannelsService } from './modules/channels/channels.service.js';
import { createActivityFeed, tapPublishes } from './modules/channels/activity.js';
import { createOps } from './modules/ops/ops.js';
import { usePresence } from './modules/presence/presence.plugin.js';
import { createPresenceService, MAX_PRESENCE_IDS } from './modules/presence/presence.service.js';
import { createMemoryPresenceStore } from './modules/presence/presence.store.memory.js';
import { createRedisPresenceStore } from './modules/presence/presence.store.redis.js';
import { useStreamCursors } from './realtime/cursors.js';
import { createEventBus, type BusEventTarget } from './realtime/event-bus.js';
import { createHistoryPruner } from './realtime/event-log.js';
import { deliveryPoliciesOf, useDeliveryPolicies, type DeliveryStats } from './realtime/delivery.js';
import { createBusRedisEventTarget } from './realtime/redis-event-target.js';
import { useSharedSubscriptions, type SharedSubscriptionsPlugin } from './realtime/shared-subscriptions.js';
import { createMaskError } from './schema/errors.js';
import { schema } from './schema/index.js';
import { GRAPHQL_SSE_PATH, createYogaServer, type Yoga } from './transport/http.js';
import { SseChannels } from './transport/sse.js';
import { attachGraphqlWs, type WsTransport } from './transport/ws.js';

export interface App {
  readonly config: Config;
  readonly yoga: Yoga;
  readonly services: Services;
  readonly database: Database;
  readonly logger: Logger;
  readonly sharedSubscriptions: SharedSubscriptionsPlugin;
  /** Results held for clients that are behind, and subscriptions ended as slow consumers (delivery.ts). */
  deliveryStats(): DeliveryStats;
  /**
   * This process among the instances sharing Redis (presence, live-subscription and viewer
   * counters are kept per instance); `GET /health` answers it in `x-yoga-id`.
   */
  readonly instanceId: string;
  /** Listens on config.port (0 = any free port); resolves with the bound URL. */
  start(): Promise<{ url: string; port: number }>;
  /** Graceful: stop accepting, end subscriptions (WS 1001), finish in-flight work, disconnect. */
  stop(): Promise<void>;
}

const READINESS_TIMEOUT_MS = 2_000;

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function createApp(config: Config, opts: { logger?: Logger } = {}): Promise<App> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, pretty: config.nodeEnv === 'development' });
  const isProd = config.nodeEnv === 'production';

  // A busy port is reported before the database is opened (and its migrations run).
  await assertPortFree(config.port, config.host);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    log: (message) => logger.info(message),
  });
  let redis: RedisConnections | undefined;
  try {
    redis = config.redisUrl ? await connectRedis(config.redisUrl, logger) : undefined;
  } catch (error) {
    await database.close();
    throw error;
  }
  const prisma = database.prisma;
  // ---- Operations (issue 14): metrics, access log, cluster view; see src/modules/ops/ops.ts. ----
  // `ops.hooks` is handed to the rate limiter, the fraud guard and delivery below; `ops.plugins`
  // goes last in Yoga's plugins; the transports are attached once they exist.
  const ops = createOps({ config, logger, redis: redis?.publisher });
  // ---- end operations ----

  const eventTarget: BusEventTarget = redis
    ? createBusRedisEventTarget({
        publisher: redis.publisher,
        subscriber: redis.subscriber,
        onPublishError: (error, topic, willRetry) =>
          logger.error(willRetry ? 'event bus publish failed; retrying' : 'event bus publish given up (resumable streams fill the gap from their history)', {
            topic,
            error,
          }),
      })
    : (new EventTarget() as BusEventTarget);
  // On Redis, a PING on the subscriber connection is answered only after every SUBSCRIBE sent
  // before it: that is the moment a new subscription is live.
  const subscriber = redis?.subscriber;
  const bus = createEventBus({
    eventTarget,
    barrier: subscriber ? async () => void (await subscriber.ping()) : () => Promise.resolve(),
  });

  const channels = createChannelsService({ prisma, bus });
  const notifications = createNotificationsService({
    prisma,
    bus,
    audience: redis ? createRedisNotificationAudience({ redis: redis.publisher }) : createMemoryNotificationAudience(),
  });
  // Domain events → activity feed and notifications, from the commit points (on the committing instance).
  const activity = createActivityFeed({ prisma, channels, onError: (error, details) => logger.error('activity feed publish failed', { ...details, error }) });
  const triggers = createNotificationTriggers({ prisma, notifications, onError: (error, details) => logger.error('notification trigger failed', { ...details, error }) });
  // Tally and session publishes also feed the activity feed (vote milestones, session changes).
  const activityBus = tapPublishes(bus, activity.onPublish, (error) => logger.error('activity tap failed', { error }));
  const tallies = createTallyPublisher({
    prisma,
    bus: activityBus,
    flushMs: config.tallyFlushMs,
    onError: (error, competitionId) => logger.error('tally flush failed; retrying', { competitionId, error }),
  });
  const competitions = createCompetitionsService({
    prisma,
    tallies,
    onStatusChanged: (competition) => {
      activity.competitionStatusChanged(competition);
      triggers.competitionStatusChanged(competition);
    },
  });
  const sessions = createSessionsService({ prisma, bus: activityBus, competitions });
  const reactions = createReactionsService({
    prisma,
    bus,
    store: redis
      ? createRedisReactionStore({ redis: redis.publisher, windowMs: config.reactionWindowMs })
      : createMemoryReactionStore({ windowMs: config.reactionWindowMs }),
    windowMs: config.reactionWindowMs,
    resumeWindowSeconds: config.resumeWindowSeconds,
    sessionStatus: (sessionId) => sessions.status(sessionId),
    onError: (message, details) => logger.error(message, details),
  });
  const offers = createOffersService({
    prisma,
    bus,
    resumeWindowSeconds: config.resumeWindowSeconds,
    minExpirySeconds: config.offerMinExpirySeconds,
    sweepIntervalMs: 1_000, // persists and publishes EXPIRED offers; every instance sweeps, each row once
    onError: (error) => logger.error('offer expiry sweep failed; retrying', { error }),
    onCommitted: (events) => {
      activity.offersCommitted(events);
      triggers.offersCommitted(events);
    },
  });
  const messaging = createMessagingService({
    prisma,
    bus,
    resumeWindowSeconds: config.resumeWindowSeconds,
    typing: redis
      ? createRedisTypingStore({ redis: redis.publisher, ttlMs: config.typingTtlMs, onError: (error) => logger.error('typing expiry sweep failed; retrying', { error }) })
      : createMemoryTypingStore({ ttlMs: config.typingTtlMs }),
    onError: (error, message) => logger.error(message, { error }),
    // A message while you have no connection (presence: live connections on every instance and
    // transport) → a notification. Called after start-up, so `presence` (built below) exists.
    onMessageCommitted: (message, recipients) =>
      triggers.messageCommitted(
        { id: message.id, conversationId: message.conversationId, authorId: message.author.id, authorName: message.author.name, body: message.body },
        recipients,
        async (userIds) => {
          const counts = new Map<string, number>();
          for (let i = 0; i < userIds.length; i += MAX_PRESENCE_IDS) {
            for (const p of await presence.presence(userIds.slice(i, i + MAX_PRESENCE_IDS))) counts.set(p.userId, p.connections);
          }
          return counts;
        },
      ),
  });
  // The User rows of the request path, one instance for users, admission and the account-age
  // rule: a first-time user costs one statement per batch, not three.
  const userRecords = createUserRecords(prisma);
  // Fraud checks on votes and reactions: windows in Redis when configured (every instance's traffic
  // counts), alerts stored and published off the hot path. FRAUD_DETECTION_ENABLED=false: no checks.
  const fraudStore = redis ? createRedisFraudStore({ redis: redis.publisher }) : createMemoryFraudStore();
  const fraud = createFraudService({
    prisma,
    bus,
    store: fraudStore,
    resumeWindowSeconds: config.resumeWindowSeconds,
    onError: (message, details) => logger.error(message, details),
  });
  // Resume histories (src/realtime/event-log.ts) are kept RESUME_WINDOW_SECONDS, then pruned.
  const historyPruner = createHistoryPruner({
    prisma,
    windowSeconds: config.resumeWindowSeconds,
    onError: (error) => logger.warn('resume history prune failed; retrying', { error }),
  });
  const fraudGuard = config.fraudDetectionEnabled
    ? createFraudGuard({
        engine: createFraudEngine({
          store: fraudStore,
          thresholds: { alert: config.fraudAlertThreshold, block: config.fraudBlockThreshold },
          accountCreatedAt: createAccountAge({ load: createdAtFromUsers(prisma, userRecords) }).createdAt,
        }),
        store: fraudStore,
        alerts: fraud,
        onError: (message, details) => logger.error(message, details),
        onDecision: ops.fraudDecision,
      })
    : fraudGuardDisabled;
  const instanceId = randomUUID();
  const viewers = redis ? createRedisViewerCounter({ redis: redis.publisher, instanceId }) : createMemoryViewerCounter();
  // Rate limits: one atomic check per call in Redis when configured (exact across instances), else in memory.
  const rateLimiter = createRateLimiter({
    store: redis ? createRedisRateLimitStore({ redis: redis.publisher, instanceId }) : createMemoryRateLimitStore(),
    rules: rateRulesFromConfig(config.rateLimit),
    escalation: escalationFromConfig(config.rateLimit),
    ipFactor: config.rateLimit.ipFactor,
    onRefused: ops.hooks.rateLimited,
  });
  const liveSubscriptions = redis
    ? createRedisLiveSubscriptionCounter({ redis: redis.publisher, instanceId, onError: (error) => logger.warn('live subscription count failed', { error }) })
    : createMemoryLiveSubscriptionCounter();
  // Tokens (guards/auth.ts), revocation and server-side roles (guards/access.ts): README "Auth flows".
  const jwtSecret = await resolveJwtSecret(config);
  const tokenIssuer = { issuer: config.jwtIssuer, audience: config.jwtAudience };
  const access = createUserAccess({ bus, readUser: userRecords.admissionRow, onError: (message, details) => logger.error(message, details) });
  const authenticator = createAuthenticator({
    secret: jwtSecret,
    ...tokenIssuer,
    // Cached; an unknown kid refetches (once per cooldown); a fetch gives up after the timeout.
    jwks: config.jwksUrl ? createRemoteJWKSet(new URL(config.jwksUrl), { cooldownDuration: config.jwksCooldownMs, timeoutDuration: 5_000 }) : undefined,
    clockToleranceSeconds: config.jwtClockToleranceSeconds,
    admit: (viewer) => access.admit(viewer),
  });
  // Presence: connection entries with heartbeats in Redis when configured (every instance's
  // connections count, a dead instance's expire), else in memory.
  const presence = createPresenceService({
    prisma,
    bus,
    store: redis
      ? createRedisPresenceStore({ redis: redis.publisher, offlineGraceMs: config.presenceOfflineGraceMs })
      : createMemoryPresenceStore({ offlineGraceMs: config.presenceOfflineGraceMs }),
    instanceId,
    rules: { awayAfterMs: config.presenceAwayAfterMs, offlineGraceMs: config.presenceOfflineGraceMs },
    connectionTtlMs: config.presenceConnectionTtlMs,
    onError: (message, details) => logger.error(message, details),
  });
  const services: Services = {
    auth: createAuthService({ prisma, bus, access, issueToken: createTokenIssuer(jwtSecret, tokenIssuer) }),
    access,
    users: createUsersService({ prisma, records: userRecords }),
    competitions,
    // Group commits: PGlite has one session; on PostgreSQL a few batches overlap on the pool.
    voting: createVotingService({ prisma, tallies, writerConcurrency: database.kind === 'pglite' ? 1 : Math.max(1, Math.min(4, config.databasePoolSize >> 1)) }),
    tallies,
    reactions,
    sessions,
    offers,
    investmentPool: createInvestmentPoolService({ prisma, bus }),
    // auth (scope-auth) → rate limits → fraud checks → service; both stages are built above.
    guards: createGuards({ rate: rateLimiter, fraud: fraudGuard }),
    fraud,
    dashboard: createDashboardService({ prisma, viewers, reactionsPerSecond: (sessionId) => reactions.reactionsPerSecond(sessionId) }),
    messaging,
    notifications,
    channels,
    presence,
    bus,
    serverStats: ops.serverStats(instanceId),
  };

  const maskError = createMaskError({
    exposeInternals: config.nodeEnv === 'development',
    onUnexpected: (error) => logger.error('unexpected error in a GraphQL operation', { error }),
  });
  // Each Subscription field declares its delivery (src/schema/delivery-plugin.ts): whether its
  // payload is the same for every viewer (one shared execution) and what a slow watcher gets.
  const deliveryPolicies = deliveryPoliciesOf(schema);
  const sharedSubscriptions = useSharedSubscriptions({ policies: deliveryPolicies, observer: ops.hooks });
  const delivery = useDeliveryPolicies({ policies: deliveryPolicies, maxClientBufferBytes: config.subscriptionClientBufferBytes, observer: ops.hooks });
  let stopping = false;
  const sseChannels = new SseChannels();
  const yoga = createYogaServer({
    id: instanceId,
    schema,
    sseChannels,
    prisma,
    services,
    authenticator,
    logger,
    maskError,
    exposeInternals: config.nodeEnv === 'development',
    trustProxy: config.trustProxy,
    limits: {
      maxBatchSize: config.limits.maxBatchSize,
      maxRequestBodyBytes: config.limits.maxRequestBodyBytes,
      clientBufferBytes: config.subscriptionClientBufferBytes,
      maxSubscriptionsPerConnection: config.maxSubscriptionsPerConnection,
    },
    extraPlugins: [
      useQueryLimits({ maxDepth: config.limits.maxQueryDepth, maxComplexity: config.limits.maxQueryComplexity, maxTokens: config.limits.maxQueryTokens }),
      useStreamGuards({ access, maskError }),
      useSubscriptionLimits({
        limiter: rateLimiter,
        live: liveSubscriptions,
        maxPerUser: config.rateLimit.maxSubscriptionsPerUser,
        ipFactor: config.rateLimit.ipFactor,
        onError: (message, details) => logger.warn(message, details),
      }),
      usePresence({ tracker: presence.tracker, authenticator, graphqlSsePath: GRAPHQL_SSE_PATH, onError: (message, details) => logger.error(message, details) }),
      useTallyViewerCount(viewers),
      useStreamCursors(), // wraps graphql-js's subscribe directly: before sharedSubscriptions
      sharedSubscriptions,
      delivery, // after sharedSubscriptions: it leaves the operations they serve alone
      ...ops.plugins(schema), // last: counts a result when the transport takes it (ops.plugin.ts)
    ],
    readiness: async () => {
      if (stopping) throw new Error('shutting down');
      // A dependency that hangs (Redis reconnecting, a saturated pool) must read as "not ready"
      // quickly, not keep the load balancer's probe waiting.
      await withTimeout(Promise.all([database.ping(), redis?.ping()]), READINESS_TIMEOUT_MS, 'dependencies did not answer in time');
    },
  });

  const server: Server = createServer(yoga);
  // Long-lived streams must not be cut by Node's default request timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 30_000;
  const ws: WsTransport = attachGraphqlWs({
    server,
    yoga,
    authenticator,
    access,
    logger,
    keepAliveMs: config.wsKeepAliveMs,
    isProd,
    trustProxy: config.trustProxy,
    ensureUser: (viewer) => services.users.ensureUser(viewer),
    maskError,
    limits: {
      maxPayloadBytes: config.limits.wsMaxMessageBytes,
      connectionInitTimeoutMs: config.limits.wsConnectionInitTimeoutMs,
      maxOperationsPerConnection: config.maxSubscriptionsPerConnection,
      clientBufferBytes: config.subscriptionClientBufferBytes,
    },
    trackConnection: (viewer) => presence.tracker.open(viewer.id, 'graphql-ws'),
  });
  ops.attach({
    connections: () => {
      const sse = sseChannels.usage();
      return { ws: ws.connections(), sse: sse.sse.connections, 'graphql-sse': sse['graphql-sse'].connections };
    },
    bufferedBytes: () => {
      const sse = sseChannels.usage();
      return { ws: ws.bufferedBytes(), sse: sse.sse.bufferedBytes, 'graphql-sse': sse['graphql-sse'].bufferedBytes };
    },
    heldResults: () => delivery.stats().held,
    probes: { database: () => database.ping(), ...(redis && { redis: () => redis!.ping() }) },
    ...(database.poolUsage && { databasePool: database.poolUsage }),
  });

  let stopped: Promise<void> | undefined;
  async function shutdown(): Promise<void> {
    stopping = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Keep-alive connections would outlive the drain (until the client's own idle timeout): every
    // response from now on closes its connection, and idle ones are closed as they become idle.
    server.on('request', (_request, response: ServerResponse) => response.setHeader('Connection', 'close'));
    server.closeIdleConnections();
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    await ws.close(); // 1001 Going Away to every graphql-ws client
    // SSE responses end without `complete`, as a dropped connection: clients reconnect elsewhere
    // with their cursors (the kit, an EventSource); then every stream's subscription is released.
    sseChannels.abortAll();
    bus.closeAll();
    const forced = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
    await closed;
    clearTimeout(forced);
    clearInterval(idle);
    await services.voting.drain(); // votes in a batch are written (and answered) before the end
    await tallies.close(); // votes already acknowledged still get their broadcast
    await reactions.close(); // pending reaction windows are published and persisted now
    await offers.close(); // stops the expiry sweeper
    await Promise.all([activity.settle(), triggers.settle()]); // activity events and notifications already triggered (may ask presence)
    await presence.close(); // stops heartbeats and the sweeper; this instance's connection entries are removed
    await messaging.close(); // stops typing expiry timers / sweeps
    await fraud.close(); // alerts already raised are stored and published
    await fraudStore.close(); // decision counters flushed
    await historyPruner.close();
    await ops.close(); // this instance leaves the cluster view
    await viewers.close();
    await liveSubscriptions.close();
    await rateLimiter.close();
    await yoga.dispose();
    await redis?.close();
    await database.close();
  }

  return {
    config,
    yoga,
    services,
    database,
    logger,
    sharedSubscriptions,
    deliveryStats: () => delivery.stats(),
    instanceId,
    start: () =>
      new Promise((resolve, reject) => {
        const failed = (error: unknown): void => reject(listenError(error, config.port, config.host));
        server.once('error', failed);
        server.listen(config.port, config.host, () => {
          server.off('error', failed);
          const { port } = server.address() as AddressInfo;
          const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
          resolve({ url: `http://${host}:${port}`, port });
        });
      }),
    stop: () => (stopped ??= shutdown()),
  };
}
