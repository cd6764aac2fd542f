/**
 * The table of contents of the system: infrastructure, the stores, the domain modules in
 * dependency order, the guards and the realtime delivery around one Yoga pipeline, and the
 * transports on top. Tests and main.ts both use createApp().
 *
 * Everything that holds a resource registers how it closes on the shutdown stack as it is
 * created; stop() closes in reverse (src/infra/lifecycle.ts), so each part finishes its work
 * while what it uses is still open. Modules react to each other through domain events
 * (src/domain-events.ts), never through closures here.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from './config.js';
import type { Services } from './context.js';
import { createDomainEvents } from './domain-events.js';
import { createOutbox, type Outbox, type OutboxRecord } from './outbox.js';
import { createGuardsLayer } from './guards/guards.module.js';
import { openDatabase, type Database } from './infra/database.js';
import { createShutdownStack, type ShutdownStack } from './infra/lifecycle.js';
import { createLogger, type Logger } from './infra/logger.js';
import { assertPortFree } from './infra/port.js';
import { connectRedis } from './infra/redis.js';
import { createAuthModule } from './modules/auth/auth.module.js';
import { createChannelsModule } from './modules/channels/channels.module.js';
import { createCompetitionsModule } from './modules/competitions/competitions.module.js';
import { createDashboardModule } from './modules/dashboard/dashboard.module.js';
import { createFraudModule } from './modules/fraud/fraud.module.js';
import { createMessagingModule } from './modules/messaging/messaging.module.js';
import { createOps } from './modules/ops/ops.module.js';
import type { WorkerMetricsLink } from './modules/ops/ops.metrics.aggregator.js';
import type { Module, ModuleContext } from './modules/module.js';
import { createNotificationsModule } from './modules/notifications/notifications.module.js';
import { createOffersModule } from './modules/offers/offers.module.js';
import { createPoolModule } from './modules/pool/pool.module.js';
import { createPresenceModule } from './modules/presence/presence.module.js';
import { createReactionsModule } from './modules/reactions/reactions.module.js';
import { createSessionsModule } from './modules/sessions/sessions.module.js';
import { createUsersModule } from './modules/users/users.module.js';
import { createVotingModule } from './modules/voting/voting.module.js';
import type { DeliveryStats } from './realtime/delivery.js';
import { createConnectionRegistry } from './realtime/connections.js';
import { createFanoutPacer } from './realtime/fanout-pacer.js';
import { createRealtimeLayer } from './realtime/realtime.module.js';
import type { SharedSubscriptionsPlugin } from './realtime/shared-subscriptions.js';
import { createMaskError } from './schema/errors.js';
import { schema } from './schema/index.js';
import { createStores, createBus } from './stores.js';
import { createYogaServer, type Yoga } from './transport/http.js';
import { createTransports } from './transport/server.js';
import { SseChannels } from './transport/sse.js';

export interface App {
  readonly config: Config;
  readonly yoga: Yoga;
  readonly services: Services;
  readonly database: Database;
  readonly logger: Logger;
  readonly sharedSubscriptions: SharedSubscriptionsPlugin;
  /** The transactional outbox's relay on this instance (src/outbox.ts). */
  readonly outbox: Outbox;
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

export interface AppOptions {
  logger?: Logger;
  /** A cluster worker's link to its primary (cluster.ts): its /metrics answers for every worker. */
  workerMetrics?: WorkerMetricsLink;
  /** The clock modules read the time from (ModuleContext.now); default Date.now. */
  now?: () => number;
}

export async function createApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const logger = opts.logger ?? createLogger({ level: config.logLevel, pretty: config.nodeEnv === 'development' });
  const stack = createShutdownStack(logger);
  try {
    return await assemble(config, logger, stack, opts.workerMetrics, opts.now ?? Date.now);
  } catch (error) {
    await stack.close(); // a half-built app releases what it opened (the data dir's lock, Redis)
    throw error;
  }
}

async function assemble(
  config: Config,
  logger: Logger,
  stack: ShutdownStack,
  workerMetrics: WorkerMetricsLink | undefined,
  now: () => number,
): Promise<App> {
  // ── Infrastructure. A busy port is reported before the database is opened (and migrated).
  await assertPortFree(config.port, config.host);
  const database = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.databasePoolSize,
    log: (message) => logger.info(message),
  });
  stack.defer('database', () => database.close());
  const redis = config.redisUrl
    ? await connectRedis({ url: config.redisUrl }, logger)
    : config.redisCluster
      ? await connectRedis({ cluster: config.redisCluster }, logger)
      : undefined;
  if (redis) stack.defer('redis', () => redis.close());
  const instanceId = randomUUID();
  const bus = createBus(redis, logger);
  const stores = createStores({ redis, config, instanceId, logger });
  stack.defer('stores', () => stores.close()); // decision counters flushed, sweepers stopped
  const events = createDomainEvents(
    (error, name) => logger.error('domain event handler failed', { event: name, error }),
    (dispatch) =>
      createOutbox({
        prisma: database.prisma,
        dispatch,
        sweepMs: config.outboxSweepMs,
        onError: (error, details) => logger.error('outbox delivery failed', { ...details, error }),
        afterCommit: crashAfterCommit(config),
      }),
  );
  // Operations (metrics, access log, cluster view): the hooks guards, delivery and transports report through.
  const ops = createOps({ config, logger, statsStore: stores.serverStats, workerMetrics });
  stack.defer('ops', () => ops.close()); // this instance leaves the cluster view
  // This instance's fan-out load: snapshot publishers (tallies) pace on it, shared streams report it.
  const pacer = createFanoutPacer();
  const ctx: ModuleContext = {
    config,
    logger,
    database,
    prisma: database.prisma,
    bus,
    pacer,
    stores,
    events,
    instanceId,
    now,
  };
  // Every transport reports its connections here; presence, the connection guard and ops read them.
  const connections = createConnectionRegistry({ onError: (message, details) => logger.error(message, details) });

  /** A module is closed at shutdown before everything created before it. */
  const install = <M extends Module<unknown>>(name: string, module: M): M => {
    const { close } = module;
    if (close) stack.defer(name, () => close.call(module));
    return module;
  };

  // ── Domain modules, each after what it uses.
  const users = install('users', createUsersModule(ctx));
  const auth = install('auth', await createAuthModule(ctx, { records: users.records }));
  const channels = install('channels', createChannelsModule(ctx)); // + the activity feed
  const presence = install('presence', createPresenceModule(ctx, { connections }));
  const notifications = install(
    'notifications',
    createNotificationsModule(ctx, { connections: (ids) => presence.connections(ids) }),
  );
  const voting = install('voting', createVotingModule(ctx));
  const competitions = install('competitions', createCompetitionsModule(ctx, { tallies: voting.tallies }));
  const sessions = install('sessions', createSessionsModule(ctx, { competitions: competitions.service }));
  const reactions = install('reactions', createReactionsModule(ctx, { sessions: sessions.service }));
  const offers = install('offers', createOffersModule(ctx));
  const pool = install('pool', createPoolModule(ctx));
  const messaging = install('messaging', createMessagingModule(ctx));
  const fraud = install(
    'fraud',
    createFraudModule(ctx, { records: users.records, onDecision: (decision) => ops.fraudDecision(decision) }),
  );
  const dashboard = install('dashboard', createDashboardModule(ctx, { reactions: reactions.service }));
  // Every handler is subscribed: deliver what a crashed instance left, then keep sweeping. Closed
  // before the modules, so the deliveries in flight finish with their handlers still open.
  events.outbox.start();
  stack.defer('outbox relay', () => events.outbox.close());

  // ── Around every operation: guards (auth → rate → fraud) and realtime delivery.
  const maskError = createMaskError({
    exposeInternals: config.nodeEnv === 'development',
    onUnexpected: (error) => logger.error('unexpected error in a GraphQL operation', { error }),
  });
  const guards = createGuardsLayer(ctx, {
    fraud: fraud.guard,
    access: auth.access,
    connections,
    maskError,
    observer: ops.hooks,
  });
  const realtime = createRealtimeLayer(ctx, schema, ops.hooks);
  stack.defer('resume history pruner', () => realtime.close());

  const services: Services = {
    auth: auth.service,
    access: auth.access,
    users: users.service,
    competitions: competitions.service,
    voting: voting.service,
    tallies: voting.tallies,
    reactions: reactions.service,
    sessions: sessions.service,
    offers: offers.service,
    investmentPool: pool.service,
    guards: guards.guards,
    fraud: fraud.service,
    dashboard: dashboard.service,
    messaging: messaging.service,
    notifications: notifications.service,
    channels: channels.service,
    presence: presence.service,
    bus,
    serverStats: ops.serverStats(instanceId),
  };

  // ── One Yoga pipeline, and the transports over it.
  let stopping = false;
  const sseChannels = new SseChannels();
  const yoga = createYogaServer({
    id: instanceId,
    schema,
    sseChannels,
    connections,
    graphqlSse: stores.graphqlSse,
    prisma: database.prisma,
    services,
    authenticator: auth.authenticator,
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
      ...guards.plugins,
      ...(presence.plugins ?? []),
      ...(dashboard.plugins ?? []),
      ...realtime.plugins,
      ...ops.plugins(schema), // last: counts a result when the transport takes it (ops.plugin.ts)
    ],
    readiness: async () => {
      if (stopping) throw new Error('shutting down');
      // A dependency that hangs (Redis reconnecting, a saturated pool) must read as "not ready"
      // quickly, not keep the load balancer's probe waiting.
      await withTimeout(
        Promise.all([database.ping(), redis?.ping()]),
        READINESS_TIMEOUT_MS,
        'dependencies did not answer in time',
      );
    },
  });
  stack.defer('yoga', () => yoga.dispose());
  const transports = createTransports({
    config,
    yoga,
    sseChannels,
    authenticator: auth.authenticator,
    logger,
    maskError,
    ensureUser: (viewer) => users.service.ensureUser(viewer),
    closeSubscriptions: () => bus.closeAll(),
    connections,
    pacer,
  });
  ops.attach({
    connections: () => connections.counts(),
    bufferedBytes: () => connections.bufferedBytes(),
    heldResults: () => realtime.deliveryStats().held,
    probes: { database: () => database.ping(), ...(redis && { redis: () => redis.ping() }) },
    ...(database.poolUsage && { databasePool: database.poolUsage }),
  });
  // Last registered, first closed: no new work, streams ended, requests in flight finished.
  stack.defer('transports', async () => {
    stopping = true;
    await transports.drain();
  });

  return {
    config,
    yoga,
    services,
    database,
    logger,
    sharedSubscriptions: realtime.sharedSubscriptions,
    outbox: events.outbox,
    deliveryStats: () => realtime.deliveryStats(),
    instanceId,
    start: () => transports.listen(),
    stop: () => stack.close(),
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * OUTBOX_TEST_CRASH_AFTER_COMMIT (NODE_ENV=test only, checked by loadConfig): the process dies by
 * SIGKILL right after the first commit of that durable event, before its delivery, as a crash
 * would (test/e2e/outbox.test.ts).
 */
function crashAfterCommit(config: Config): ((record: OutboxRecord) => void) | undefined {
  const name = config.outboxTestCrashAfterCommit;
  if (name === undefined || config.nodeEnv !== 'test') return undefined;
  return (record) => {
    if (record.name === name) process.kill(process.pid, 'SIGKILL');
  };
}
