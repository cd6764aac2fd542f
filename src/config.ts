/**
 * The only reader of `process.env`. Parsed once at start; a bad value fails with a message that
 * names the variable. Names and defaults follow the API contract's header; units are in the
 * property names.
 *
 * One file on purpose (over ~400 lines): every variable, its default and its check side by side,
 * as the README's configuration table lists them; split, a reader would have to look in several
 * places to learn what one variable does.
 */
import os from 'node:os';
import path from 'node:path';
import { DURABLE_EVENTS } from './domain-events.js';

export type NodeEnv = 'development' | 'production' | 'test';

export interface RedisClusterConfig {
  nodes: { host: string; port: number }[];
  username: string | undefined;
  password: string | undefined;
  /** `rediss://` seeds: TLS to every node. */
  tls: boolean;
}

export interface Config {
  /** PORT [4000]. 0 picks a free port (tests). */
  port: number;
  /** HOST [0.0.0.0]. */
  host: string;
  /**
   * WORKERS [1]: server processes on this host, all behind PORT (node:cluster, src/cluster.ts);
   * `auto` = the cores available to this process. More than one needs DATABASE_URL and REDIS_URL.
   */
  workers: number;
  nodeEnv: NodeEnv;
  /** DATA_DIR [./.data]: embedded PGlite data and the generated dev JWT secret. Absolute. */
  dataDir: string;
  /** DATABASE_URL [unset = embedded PGlite under DATA_DIR]. */
  databaseUrl: string | undefined;
  /** DATABASE_POOL_SIZE [10]: pg pool size when DATABASE_URL is set. */
  databasePoolSize: number;
  /** REDIS_URL [unset = in-process pubsub]: one Redis server. */
  redisUrl: string | undefined;
  /**
   * REDIS_CLUSTER_NODES [unset]: seed nodes of a Redis Cluster (≥ 7), instead of REDIS_URL; comma
   * separated `host:port` or `redis[s]://[user:password@]host:port` (every seed with the same
   * scheme and credentials). The rest of the cluster is discovered from them.
   */
  redisCluster: RedisClusterConfig | undefined;
  /** JWT_SECRET [unset = a dev secret generated once under DATA_DIR]. */
  jwtSecret: string | undefined;
  /** JWKS_URL [unset]: RS256/ES256 keys, fetched on first use, refetched on an unknown `kid`. */
  jwksUrl: string | undefined;
  /** JWKS_COOLDOWN_MS [30000]: after a JWKS fetch, an unknown `kid` triggers no new fetch for this long. */
  jwksCooldownMs: number;
  /** JWT_ISSUER [unset]: when set, tokens must carry this `iss` (and server-issued tokens do). */
  jwtIssuer: string | undefined;
  /** JWT_AUDIENCE [unset]: when set, tokens must carry this `aud` (and server-issued tokens do). */
  jwtAudience: string | undefined;
  /** JWT_CLOCK_TOLERANCE_SECONDS [5]: clock skew allowed on `exp`/`nbf` when a token is presented. */
  jwtClockToleranceSeconds: number;
  /**
   * JWT_REQUIRE_EXP [true]: tokens without `exp` are refused (UNAUTHENTICATED). `false` accepts
   * them, for development only: such a token never expires, so its connections are never closed
   * for expiry. NODE_ENV=production refuses `false`.
   */
  jwtRequireExp: boolean;
  /** TRUST_PROXY [false]: believe X-Forwarded-For for the client IP. */
  trustProxy: boolean;
  rateLimit: {
    /** RATE_LIMIT_VOTES_PER_MINUTE [10] */
    votesPerMinute: number;
    /** RATE_LIMIT_REACTIONS_PER_MINUTE [30] */
    reactionsPerMinute: number;
    /** RATE_LIMIT_MESSAGES_PER_MINUTE [30] */
    messagesPerMinute: number;
    /** RATE_LIMIT_TYPING_PER_MINUTE [60]: typing indicator updates. */
    typingPerMinute: number;
    /** RATE_LIMIT_PRESENCE_PER_MINUTE [30]: presence updates. */
    presencePerMinute: number;
    /** RATE_LIMIT_PLEDGES_PER_MINUTE [30]: investment pool pledges (each is a transaction that re-reads the session's pool and is published to its watchers). */
    pledgesPerMinute: number;
    /** RATE_LIMIT_MUTATIONS_PER_MINUTE [120]: every other rate rule (rule names without their own variable, each counted on its own). */
    mutationsPerMinute: number;
    /** RATE_LIMIT_POLLS_PER_MINUTE [600]: polling queries (offerEvents, messageEvents, …), the fallback of clients that cannot stream. */
    pollsPerMinute: number;
    /** RATE_LIMIT_QUERIES_PER_MINUTE [1200]: every other query field (README "Limits"). */
    queriesPerMinute: number;
    /** RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE [60]: subscription operations started, on every transport, once the burst is spent (the bucket's refill). */
    subscriptionsPerMinute: number;
    /** RATE_LIMIT_SUBSCRIPTIONS_BURST [2 × MAX_SUBSCRIPTIONS_PER_CONNECTION = 200, at least MAX_SUBSCRIPTIONS_PER_CONNECTION]: subscriptions started at once (the bucket's size): a page's and one reconnect's. */
    subscriptionsBurst: number;
    /**
     * RATE_LIMIT_SUBSCRIPTIONS_IP_BURST [MAX_SUBSCRIPTIONS_PER_IP = 20000]: the bucket's size for an
     * anonymous client IP (a venue behind one NAT): everything the address may hold live, re-opened
     * at once after an instance dies. Refilled at RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE × RATE_LIMIT_IP_FACTOR.
     */
    subscriptionsIpBurst: number;
    /** MAX_SUBSCRIPTIONS_PER_USER [100]: live subscriptions at once, across connections, transports and instances. */
    maxSubscriptionsPerUser: number;
    /**
     * MAX_SUBSCRIPTIONS_PER_IP [20000]: live anonymous subscriptions at once per client IP, across
     * connections, transports and instances: a venue of 5,000 with two streams each, counted twice
     * for the 30 s in which a killed instance's subscriptions still count (its heartbeat's TTL).
     */
    maxSubscriptionsPerIp: number;
    /** RATE_LIMIT_IP_FACTOR [20]: anonymous callers are counted per client IP (often many people behind one NAT) with this many times a rule's budget. */
    ipFactor: number;
    /** RATE_LIMIT_BLOCK_BASE_MS [60000]: block after the first violation; doubles with every further one. */
    blockBaseMs: number;
    /** RATE_LIMIT_BLOCK_MAX_MS [960000]: the longest block (16 min). */
    blockMaxMs: number;
    /** RATE_LIMIT_STRIKE_TTL_MS [3600000]: violations are forgotten after this long without a new one. */
    strikeTtlMs: number;
  };
  /** Protocol limits (src/guards/limits.ts, src/transport/ws.ts). */
  limits: {
    /** MAX_QUERY_DEPTH [12]: nested selection sets (introspection excluded). */
    maxQueryDepth: number;
    /** MAX_QUERY_COMPLEXITY [5000]: estimated objects in the result (list fields multiply by first/last, else 10). */
    maxQueryComplexity: number;
    /** MAX_QUERY_TOKENS [5000]: GraphQL tokens in one document, checked while parsing. */
    maxQueryTokens: number;
    /** MAX_REQUEST_BODY_BYTES [1048576]: HTTP request bodies above this are answered 413 unread. */
    maxRequestBodyBytes: number;
    /** MAX_BATCH_SIZE [10]: operations in one batched HTTP request. */
    maxBatchSize: number;
    /** WS_MAX_MESSAGE_BYTES [1048576]: a larger WebSocket message closes the socket with 1009. */
    wsMaxMessageBytes: number;
    /** WS_CONNECTION_INIT_TIMEOUT_MS [3000]: no connection_init within this long closes with 4408. */
    wsConnectionInitTimeoutMs: number;
  };
  /** FRAUD_DETECTION_ENABLED [true] */
  fraudDetectionEnabled: boolean;
  /** FRAUD_ALERT_THRESHOLD [70]: risk score (0..100) at which a vote or reaction counts but raises an alert. */
  fraudAlertThreshold: number;
  /** FRAUD_BLOCK_THRESHOLD [80]: risk score (0..100, ≥ the alert threshold) at which it is refused with FRAUD_BLOCKED. */
  fraudBlockThreshold: number;
  /** TALLY_FLUSH_MS [100]: at most one tallyUpdated per competition per this many ms. */
  tallyFlushMs: number;
  /** REACTION_WINDOW_MS [250] */
  reactionWindowMs: number;
  /** TYPING_TTL_MS [5000] */
  typingTtlMs: number;
  /** PRESENCE_OFFLINE_GRACE_MS [5000] */
  presenceOfflineGraceMs: number;
  /** PRESENCE_AWAY_AFTER_MS [300000]: a connected user with no operation for this long reads AWAY. */
  presenceAwayAfterMs: number;
  /** PRESENCE_CONNECTION_TTL_MS [30000]: a connection entry its instance stopped refreshing (every ttl/3) expires after this long. */
  presenceConnectionTtlMs: number;
  /** MAX_SUBSCRIPTIONS_PER_CONNECTION [100]: operations in flight on one graphql-ws connection or graphql-sse stream. */
  maxSubscriptionsPerConnection: number;
  /** GRAPHQL_SSE_RESERVATION_TTL_MS [60000]: a graphql-sse reservation (PUT) that no stream connected to within this long is forgotten. */
  graphqlSseReservationTtlMs: number;
  /**
   * RESUME_WINDOW_SECONDS [300]: events of resumable streams (reactions, offers, read receipts,
   * fraud alerts) are kept at least this long for clients resuming with afterSeq / Last-Event-ID.
   */
  resumeWindowSeconds: number;
  /**
   * SUBSCRIPTION_CLIENT_BUFFER_BYTES [1048576]: bytes written for a client and not yet taken by its
   * connection beyond which its subscriptions hold results back (snapshot fields keep the newest,
   * event fields up to their maxQueued, then end with RATE_LIMITED / SLOW_CONSUMER).
   */
  subscriptionClientBufferBytes: number;
  /** WS_KEEP_ALIVE_MS [12000]: graphql-ws ping interval; a peer that has not answered a ping by the next one is dropped. SSE pings every 12 s (Yoga's and graphql-sse's own). */
  wsKeepAliveMs: number;
  /** SHUTDOWN_TIMEOUT_MS [8000]: in-flight work gets this long after SIGTERM before a forced exit. */
  shutdownTimeoutMs: number;
  /**
   * OUTBOX_SWEEP_MS [1000]: how often each instance delivers outbox events nobody delivered (a
   * crashed instance's, failed ones being retried); 0: only at start. See src/outbox.ts.
   */
  outboxSweepMs: number;
  /**
   * OUTBOX_TEST_CRASH_AFTER_COMMIT [unset]: fault injection for the outbox's crash test: the
   * process SIGKILLs itself right after committing the first durable event of this name, before
   * delivering it. Honoured only with NODE_ENV=test (refused otherwise).
   */
  outboxTestCrashAfterCommit: string | undefined;
  /** LOG_LEVEL [info]: debug | info | warn | error | silent. */
  logLevel: LogLevel;
  /** METRICS_ENABLED [true]: GET /metrics and the series behind it (false: no metrics work at all, e.g. to measure their cost). */
  metricsEnabled: boolean;
  /** METRICS_TOKEN [unset = /metrics open]: when set, /metrics needs `Authorization: Bearer <METRICS_TOKEN>`. */
  metricsToken: string | undefined;
  /** SLOW_OPERATION_MS [1000]: operations taking at least this long are logged at warn, flagged `slow`. */
  slowOperationMs: number;
  /** SERVER_STATS_INTERVAL_MS [5000]: how often each instance publishes its stats for the admin cluster view (serverStats). */
  serverStatsIntervalMs: number;
  /** OFFER_MIN_EXPIRY_SECONDS [10]: the shortest makeOffer expiresInSeconds accepted (tests lower it). */
  offerMinExpirySeconds: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/**
 * A start-up failure the operator fixes through a variable (a bad value, a busy PORT, a DATA_DIR in
 * use): main.ts prints the message alone, one line without a stack.
 */
export class StartupError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'StartupError';
  }
}

export class ConfigError extends StartupError {
  constructor(variable: string, message: string) {
    super(variable, `Invalid configuration: ${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * Secrets that are public: docker-compose.yml's fallback and the README's examples. Anyone can sign
 * tokens with them, so production refuses them (as it refuses secrets with too few distinct
 * characters, like a repeated word).
 */
const KNOWN_JWT_SECRETS = new Set(['change-me-change-me-change-me-change-me']);
const PLACEHOLDER_MARKERS = /change[-_ ]?me|replace[-_ ]?me|placeholder|example|your[-_ ]?secret/i;
const MIN_DISTINCT_SECRET_CHARS = 10;

/** Why `secret` is unfit for production, or undefined. */
export function weakJwtSecretReason(secret: string): string | undefined {
  if (KNOWN_JWT_SECRETS.has(secret) || PLACEHOLDER_MARKERS.test(secret)) return 'is a published placeholder';
  if (new Set(secret).size < MIN_DISTINCT_SECRET_CHARS)
    return `has fewer than ${MIN_DISTINCT_SECRET_CHARS} distinct characters`;
  return undefined;
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function int(env: Env, name: string, fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  // Number('') and Number('12abc') must not slip through as 0 / NaN (see the klicker lesson).
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = str(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  }
  return raw as T;
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'is not a valid URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return raw;
}

/**
 * REDIS_CLUSTER_NODES: `host:port` entries, or URLs that also carry the scheme (TLS) and the
 * credentials, which every node of a cluster shares; so seeds that disagree are refused.
 */
function redisCluster(env: Env): RedisClusterConfig | undefined {
  const name = 'REDIS_CLUSTER_NODES';
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  const seeds = raw.split(',').map((entry) => entry.trim());
  if (seeds.some((entry) => entry === '')) throw new ConfigError(name, `has an empty entry in "${raw}"`);
  const parsed = seeds.map((entry) => {
    let seed: URL;
    try {
      seed = new URL(/^[a-z]+:\/\//i.test(entry) ? entry : `redis://${entry}`);
    } catch {
      throw new ConfigError(name, `entry "${entry}" is not host:port or a redis:// URL`);
    }
    if (seed.protocol !== 'redis:' && seed.protocol !== 'rediss:')
      throw new ConfigError(name, `entry "${entry}" must use redis: or rediss:, got ${seed.protocol}`);
    if (seed.port === '' || (seed.pathname !== '' && seed.pathname !== '/'))
      throw new ConfigError(name, `entry "${entry}" must be host:port (a cluster has no database number)`);
    return seed;
  });
  const first = parsed[0]!;
  const same = (seed: URL) =>
    seed.protocol === first.protocol && seed.username === first.username && seed.password === first.password;
  if (!parsed.every(same))
    throw new ConfigError(name, 'entries must share one scheme and the same credentials (one cluster)');
  return {
    // URL keeps IPv6 hosts in brackets; sockets want them bare.
    nodes: parsed.map((seed) => ({ host: seed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(seed.port) })),
    username: first.username === '' ? undefined : decodeURIComponent(first.username),
    password: first.password === '' ? undefined : decodeURIComponent(first.password),
    tls: first.protocol === 'rediss:',
  };
}

const MAX_WORKERS = 256;

/**
 * WORKERS: a count, or `auto` for the cores this process may use. Workers share nothing in
 * memory: the embedded database and the in-process pubsub would each be one per worker (votes
 * split over N databases, events reaching a worker's own subscribers only), so anything but 1
 * needs both shared services — `auto` too, even where it comes to 1, so that a configuration
 * does not start on a one-core laptop and fail on the server.
 */
function workers(env: Env, shared: { databaseUrl: string | undefined; redis: boolean }): number {
  const raw = str(env, 'WORKERS');
  if (raw === undefined) return 1;
  const auto = raw.toLowerCase() === 'auto';
  if (!auto && !/^\d+$/.test(raw))
    throw new ConfigError('WORKERS', `must be a number of processes or auto, got "${raw}"`);
  const value = auto
    ? Math.min(MAX_WORKERS, os.availableParallelism())
    : int(env, 'WORKERS', 1, { min: 1, max: MAX_WORKERS });
  const missing = [shared.databaseUrl ? [] : ['DATABASE_URL'], shared.redis ? [] : ['REDIS_URL']].flat().join(' and ');
  if ((auto || value > 1) && missing) {
    throw new ConfigError(
      'WORKERS',
      `${raw} needs ${missing}: workers share no memory, so neither the embedded database nor the in-process pubsub can serve them (set ${missing}, or WORKERS=1)`,
    );
  }
  return value;
}

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const jwtSecret = str(env, 'JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 characters (HS256 needs a 256-bit key)');
  }
  const weakness = jwtSecret !== undefined && nodeEnv === 'production' ? weakJwtSecretReason(jwtSecret) : undefined;
  if (weakness) {
    throw new ConfigError(
      'JWT_SECRET',
      `${weakness}: with NODE_ENV=production set a random one (e.g. openssl rand -base64 48)`,
    );
  }
  // The same default everywhere: NODE_ENV is `development` when unset, so a default tied to it
  // would accept tokens that never expire on any server started without NODE_ENV.
  const jwtRequireExp = bool(env, 'JWT_REQUIRE_EXP', true);
  if (!jwtRequireExp && nodeEnv === 'production') {
    throw new ConfigError(
      'JWT_REQUIRE_EXP',
      'must not be false with NODE_ENV=production: a token without exp never expires (issue tokens with exp)',
    );
  }
  const fraudAlertThreshold = int(env, 'FRAUD_ALERT_THRESHOLD', 70, { max: 100 });
  const fraudBlockThreshold = int(env, 'FRAUD_BLOCK_THRESHOLD', 80, { max: 100 });
  if (fraudAlertThreshold > fraudBlockThreshold) {
    throw new ConfigError(
      'FRAUD_ALERT_THRESHOLD',
      `must not exceed FRAUD_BLOCK_THRESHOLD (${fraudBlockThreshold}), got ${fraudAlertThreshold}`,
    );
  }
  const maxSubscriptionsPerConnection = int(env, 'MAX_SUBSCRIPTIONS_PER_CONNECTION', 100, { min: 1 });
  // A page opens up to MAX_SUBSCRIPTIONS_PER_CONNECTION at once: a smaller burst would refuse it.
  const subscriptionsBurst = int(env, 'RATE_LIMIT_SUBSCRIPTIONS_BURST', 2 * maxSubscriptionsPerConnection, { min: 1 });
  if (subscriptionsBurst < maxSubscriptionsPerConnection) {
    throw new ConfigError(
      'RATE_LIMIT_SUBSCRIPTIONS_BURST',
      `must be at least MAX_SUBSCRIPTIONS_PER_CONNECTION (${maxSubscriptionsPerConnection}), got ${subscriptionsBurst}`,
    );
  }
  const outboxTestCrashAfterCommit = str(env, 'OUTBOX_TEST_CRASH_AFTER_COMMIT');
  if (outboxTestCrashAfterCommit !== undefined) {
    if (nodeEnv !== 'test')
      throw new ConfigError('OUTBOX_TEST_CRASH_AFTER_COMMIT', 'is a test fault: only with NODE_ENV=test');
    if (!(DURABLE_EVENTS as readonly string[]).includes(outboxTestCrashAfterCommit)) {
      throw new ConfigError('OUTBOX_TEST_CRASH_AFTER_COMMIT', `must be one of ${DURABLE_EVENTS.join(', ')}`);
    }
  }
  const maxSubscriptionsPerIp = int(env, 'MAX_SUBSCRIPTIONS_PER_IP', 20_000, { min: 1 });
  const subscriptionsIpBurst = int(env, 'RATE_LIMIT_SUBSCRIPTIONS_IP_BURST', maxSubscriptionsPerIp, { min: 1 });
  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const cluster = redisCluster(env);
  if (redisUrl !== undefined && cluster !== undefined)
    throw new ConfigError('REDIS_CLUSTER_NODES', 'and REDIS_URL are both set: set one (a cluster, or one server)');
  return {
    port: int(env, 'PORT', 4000, { max: 65535 }),
    host: str(env, 'HOST') ?? '0.0.0.0',
    workers: workers(env, { databaseUrl, redis: redisUrl !== undefined || cluster !== undefined }),
    nodeEnv,
    dataDir: path.resolve(str(env, 'DATA_DIR') ?? './.data'),
    databaseUrl,
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, { min: 1, max: 1000 }),
    redisUrl,
    redisCluster: cluster,
    jwtSecret,
    jwksUrl: url(env, 'JWKS_URL', ['http:', 'https:']),
    jwksCooldownMs: int(env, 'JWKS_COOLDOWN_MS', 30_000, { max: 86_400_000 }),
    jwtIssuer: str(env, 'JWT_ISSUER'),
    jwtAudience: str(env, 'JWT_AUDIENCE'),
    jwtClockToleranceSeconds: int(env, 'JWT_CLOCK_TOLERANCE_SECONDS', 5, { max: 3600 }),
    jwtRequireExp,
    trustProxy: bool(env, 'TRUST_PROXY', false),
    rateLimit: {
      votesPerMinute: int(env, 'RATE_LIMIT_VOTES_PER_MINUTE', 10, { min: 1 }),
      reactionsPerMinute: int(env, 'RATE_LIMIT_REACTIONS_PER_MINUTE', 30, { min: 1 }),
      messagesPerMinute: int(env, 'RATE_LIMIT_MESSAGES_PER_MINUTE', 30, { min: 1 }),
      typingPerMinute: int(env, 'RATE_LIMIT_TYPING_PER_MINUTE', 60, { min: 1 }),
      presencePerMinute: int(env, 'RATE_LIMIT_PRESENCE_PER_MINUTE', 30, { min: 1 }),
      pledgesPerMinute: int(env, 'RATE_LIMIT_PLEDGES_PER_MINUTE', 30, { min: 1 }),
      mutationsPerMinute: int(env, 'RATE_LIMIT_MUTATIONS_PER_MINUTE', 120, { min: 1 }),
      pollsPerMinute: int(env, 'RATE_LIMIT_POLLS_PER_MINUTE', 600, { min: 1 }),
      queriesPerMinute: int(env, 'RATE_LIMIT_QUERIES_PER_MINUTE', 1200, { min: 1 }),
      subscriptionsPerMinute: int(env, 'RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE', 60, { min: 1 }),
      subscriptionsBurst,
      subscriptionsIpBurst,
      maxSubscriptionsPerUser: int(env, 'MAX_SUBSCRIPTIONS_PER_USER', 100, { min: 1 }),
      maxSubscriptionsPerIp,
      ipFactor: int(env, 'RATE_LIMIT_IP_FACTOR', 20, { min: 1, max: 1_000_000 }),
      blockBaseMs: int(env, 'RATE_LIMIT_BLOCK_BASE_MS', 60_000, { min: 0, max: 86_400_000 }),
      blockMaxMs: int(env, 'RATE_LIMIT_BLOCK_MAX_MS', 960_000, { min: 0, max: 86_400_000 }),
      strikeTtlMs: int(env, 'RATE_LIMIT_STRIKE_TTL_MS', 3_600_000, { min: 1_000, max: 7 * 86_400_000 }),
    },
    limits: {
      maxQueryDepth: int(env, 'MAX_QUERY_DEPTH', 12, { min: 1, max: 1_000 }),
      maxQueryComplexity: int(env, 'MAX_QUERY_COMPLEXITY', 5_000, { min: 1 }),
      maxQueryTokens: int(env, 'MAX_QUERY_TOKENS', 5_000, { min: 100 }),
      maxRequestBodyBytes: int(env, 'MAX_REQUEST_BODY_BYTES', 1_048_576, { min: 1_024, max: 1_073_741_824 }),
      maxBatchSize: int(env, 'MAX_BATCH_SIZE', 10, { min: 1, max: 1_000 }),
      wsMaxMessageBytes: int(env, 'WS_MAX_MESSAGE_BYTES', 1_048_576, { min: 1_024, max: 1_073_741_824 }),
      wsConnectionInitTimeoutMs: int(env, 'WS_CONNECTION_INIT_TIMEOUT_MS', 3_000, { min: 100, max: 600_000 }),
    },
    fraudDetectionEnabled: bool(env, 'FRAUD_DETECTION_ENABLED', true),
    fraudAlertThreshold,
    fraudBlockThreshold,
    tallyFlushMs: int(env, 'TALLY_FLUSH_MS', 100, { min: 1, max: 60_000 }),
    reactionWindowMs: int(env, 'REACTION_WINDOW_MS', 250, { min: 10, max: 60_000 }),
    typingTtlMs: int(env, 'TYPING_TTL_MS', 5000, { min: 100 }),
    presenceOfflineGraceMs: int(env, 'PRESENCE_OFFLINE_GRACE_MS', 5000, { min: 0 }),
    presenceAwayAfterMs: int(env, 'PRESENCE_AWAY_AFTER_MS', 300_000, { min: 100 }),
    presenceConnectionTtlMs: int(env, 'PRESENCE_CONNECTION_TTL_MS', 30_000, { min: 300, max: 3_600_000 }),
    maxSubscriptionsPerConnection,
    graphqlSseReservationTtlMs: int(env, 'GRAPHQL_SSE_RESERVATION_TTL_MS', 60_000, { min: 100, max: 3_600_000 }),
    resumeWindowSeconds: int(env, 'RESUME_WINDOW_SECONDS', 300, { min: 1, max: 30 * 86_400 }),
    subscriptionClientBufferBytes: int(env, 'SUBSCRIPTION_CLIENT_BUFFER_BYTES', 1_048_576, {
      min: 1_024,
      max: 1_073_741_824,
    }),
    wsKeepAliveMs: int(env, 'WS_KEEP_ALIVE_MS', 12_000, { min: 100 }),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 8000, { min: 100, max: 60_000 }),
    outboxSweepMs: int(env, 'OUTBOX_SWEEP_MS', 1_000, { min: 0, max: 3_600_000 }),
    outboxTestCrashAfterCommit,
    logLevel: oneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error', 'silent'] as const, 'info'),
    metricsEnabled: bool(env, 'METRICS_ENABLED', true),
    metricsToken: str(env, 'METRICS_TOKEN'),
    slowOperationMs: int(env, 'SLOW_OPERATION_MS', 1_000, { min: 1, max: 3_600_000 }),
    serverStatsIntervalMs: int(env, 'SERVER_STATS_INTERVAL_MS', 5_000, { min: 100, max: 600_000 }),
    offerMinExpirySeconds: int(env, 'OFFER_MIN_EXPIRY_SECONDS', 10, { min: 1, max: 604_800 }),
  };
}
