/**
 * The wiring point: infrastructure, stores, services, the Yoga pipeline and both socket
 * transports. The only place that chooses between embedded and external implementations
 * (PGlite or PostgreSQL, in-process or Redis pubsub). Tests and main.ts both use createApp().
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import type { Config } from './config.js';
import type { Services } from './context.js';
import { createAuthenticator, resolveJwtSecret } from './guards/auth.js';
import { createGuards } from './guards/guards.js';
import { openDatabase, type Database } from './infra/database.js';
import { createLogger, type Logger } from './infra/logger.js';
import { connectRedis, type RedisConnections } from './infra/redis.js';
import { createCompetitionsService } from './modules/competitions/competitions.service.js';
import { createUsersService } from './modules/users/users.service.js';
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
import { createEventBus, type BusEventTarget } from './realtime/event-bus.js';
import { useSharedSubscriptions, type SharedSubscriptionsPlugin } from './realtime/shared-subscriptions.js';
import { createMaskError } from './schema/errors.js';
import { schema } from './schema/index.js';
import { createYogaServer, type Yoga } from './transport/http.js';
import { attachGraphqlWs, type WsTransport } from './transport/ws.js';

export interface App {
  readonly config: Config;
  readonly yoga: Yoga;
  readonly services: Services;
  readonly database: Database;
  readonly logger: Logger;
  readonly sharedSubscriptions: SharedSubscriptionsPlugin;
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
  const logger = opts.logger ?? createLogger({ level: config.logLevel, json: config.nodeEnv === 'production' });
  const isProd = config.nodeEnv === 'production';

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

  const eventTarget: BusEventTarget = redis
    ? createRedisEventTarget({ publishClient: redis.publisher, subscribeClient: redis.subscriber })
    : (new EventTarget() as BusEventTarget);
  // On Redis, a PING on the subscriber connection is answered only after every SUBSCRIBE sent
  // before it: that is the moment a new subscription is live.
  const subscriber = redis?.subscriber;
  const bus = createEventBus({
    eventTarget,
    barrier: subscriber ? async () => void (await subscriber.ping()) : () => Promise.resolve(),
  });

  const tallies = createTallyPublisher({
    prisma,
    bus,
    flushMs: config.tallyFlushMs,
    onError: (error, competitionId) => logger.error('tally flush failed; retrying', { competitionId, error }),
  });
  const competitions = createCompetitionsService({ prisma, onStandingsChanged: (id) => tallies.markDirty(id) });
  const sessions = createSessionsService({ prisma, bus, competitions });
  const reactions = createReactionsService({
    prisma,
    bus,
    store: redis
      ? createRedisReactionStore({ redis: redis.publisher, windowMs: config.reactionWindowMs })
      : createMemoryReactionStore({ windowMs: config.reactionWindowMs }),
    windowMs: config.reactionWindowMs,
    sessionStatus: (sessionId) => sessions.status(sessionId),
    onError: (message, details) => logger.error(message, details),
  });
  const offers = createOffersService({
    prisma,
    bus,
    minExpirySeconds: config.offerMinExpirySeconds,
    sweepIntervalMs: 1_000, // persists and publishes EXPIRED offers; every instance sweeps, each row once
    onError: (error) => logger.error('offer expiry sweep failed; retrying', { error }),
  });
  const instanceId = randomUUID();
  const viewers = redis ? createRedisViewerCounter({ redis: redis.publisher, instanceId }) : createMemoryViewerCounter();
  const services: Services = {
    users: createUsersService({ prisma }),
    competitions,
    // Group commits: PGlite has one session; on PostgreSQL a few batches overlap on the pool.
    voting: createVotingService({ prisma, tallies, writerConcurrency: database.kind === 'pglite' ? 1 : Math.max(1, Math.min(4, config.databasePoolSize >> 1)) }),
    tallies,
    reactions,
    sessions,
    offers,
    investmentPool: createInvestmentPoolService({ prisma, bus }),
    // Rate limits and fraud checks are wired by their modules (guards work); until then they admit everything.
    guards: createGuards({ rate: { consume: async () => undefined }, fraud: { check: async () => undefined } }),
    dashboard: createDashboardService({ prisma, viewers, reactionsPerSecond: (sessionId) => reactions.reactionsPerSecond(sessionId) }),
    bus,
  };

  const authenticator = createAuthenticator(await resolveJwtSecret(config));
  const maskError = createMaskError({
    exposeInternals: config.nodeEnv === 'development',
    onUnexpected: (error) => logger.error('unexpected error in a GraphQL operation', { error }),
  });
  // Only public root fields whose payload is the same for every viewer may share one execution.
  const sharedSubscriptions = useSharedSubscriptions({
    fields: {
      tallyUpdated: 'snapshot',
      sessionUpdated: 'snapshot',
      investmentPoolUpdated: 'snapshot',
      reactions: 'events',
      offerUpdated: 'events',
    },
  });
  let stopping = false;
  const yoga = createYogaServer({
    schema,
    prisma,
    services,
    authenticator,
    logger,
    maskError,
    exposeInternals: config.nodeEnv === 'development',
    trustProxy: config.trustProxy,
    extraPlugins: [useTallyViewerCount(viewers), sharedSubscriptions],
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
    logger,
    keepAliveMs: config.wsKeepAliveMs,
    isProd,
    trustProxy: config.trustProxy,
    maskError,
  });

  let stopped: Promise<void> | undefined;
  async function shutdown(): Promise<void> {
    stopping = true;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    await ws.close(); // 1001 Going Away to every graphql-ws client
    bus.closeAll(); // SSE streams complete and their responses end
    const forced = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
    await closed;
    clearTimeout(forced);
    await services.voting.drain(); // votes in a batch are written (and answered) before the end
    await tallies.close(); // votes already acknowledged still get their broadcast
    await reactions.close(); // pending reaction windows are published and persisted now
    await offers.close(); // stops the expiry sweeper
    await viewers.close();
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
    start: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(config.port, config.host, () => {
          server.off('error', reject);
          const { port } = server.address() as AddressInfo;
          const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
          resolve({ url: `http://${host}:${port}`, port });
        });
      }),
    stop: () => (stopped ??= shutdown()),
  };
}
