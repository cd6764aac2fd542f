/**
 * The only reader of `process.env`. Parsed once at start; a bad value fails with a message that
 * names the variable. Names and defaults follow the API contract's header; units are in the
 * property names.
 */
import path from 'node:path';

export type NodeEnv = 'development' | 'production' | 'test';

export interface Config {
  /** PORT [4000]. 0 picks a free port (tests). */
  port: number;
  /** HOST [0.0.0.0]. */
  host: string;
  nodeEnv: NodeEnv;
  /** DATA_DIR [./.data]: embedded PGlite data and the generated dev JWT secret. Absolute. */
  dataDir: string;
  /** DATABASE_URL [unset = embedded PGlite under DATA_DIR]. */
  databaseUrl: string | undefined;
  /** DATABASE_POOL_SIZE [10]: pg pool size when DATABASE_URL is set. */
  databasePoolSize: number;
  /** REDIS_URL [unset = in-process pubsub]. */
  redisUrl: string | undefined;
  /** JWT_SECRET [unset = a dev secret generated once under DATA_DIR]. */
  jwtSecret: string | undefined;
  /** JWKS_URL [unset]. Used by the guards work (RS256/ES256). */
  jwksUrl: string | undefined;
  /** TRUST_PROXY [false]: believe X-Forwarded-For for the client IP. */
  trustProxy: boolean;
  rateLimit: {
    /** RATE_LIMIT_VOTES_PER_MINUTE [10] */
    votesPerMinute: number;
    /** RATE_LIMIT_REACTIONS_PER_MINUTE [30] */
    reactionsPerMinute: number;
    /** RATE_LIMIT_MESSAGES_PER_MINUTE [30] */
    messagesPerMinute: number;
  };
  /** FRAUD_DETECTION_ENABLED [true] */
  fraudDetectionEnabled: boolean;
  /** TALLY_FLUSH_MS [100]: at most one tallyUpdated per competition per this many ms. */
  tallyFlushMs: number;
  /** REACTION_WINDOW_MS [250] */
  reactionWindowMs: number;
  /** TYPING_TTL_MS [5000] */
  typingTtlMs: number;
  /** PRESENCE_OFFLINE_GRACE_MS [5000] */
  presenceOfflineGraceMs: number;
  /** MAX_SUBSCRIPTIONS_PER_CONNECTION [100] */
  maxSubscriptionsPerConnection: number;
  /** WS_KEEP_ALIVE_MS [12000]: graphql-ws ping interval; a peer that misses a pong for as long is dropped. SSE pings every 12 s (Yoga's and graphql-sse's own). */
  wsKeepAliveMs: number;
  /** SHUTDOWN_TIMEOUT_MS [8000]: in-flight work gets this long after SIGTERM before a forced exit. */
  shutdownTimeoutMs: number;
  /** LOG_LEVEL [info]: debug | info | warn | error | silent. */
  logLevel: LogLevel;
  /** OFFER_MIN_EXPIRY_SECONDS [10]: the shortest makeOffer expiresInSeconds accepted (tests lower it). */
  offerMinExpirySeconds: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = 'ConfigError';
  }
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

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const jwtSecret = str(env, 'JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 characters (HS256 needs a 256-bit key)');
  }
  return {
    port: int(env, 'PORT', 4000, { max: 65535 }),
    host: str(env, 'HOST') ?? '0.0.0.0',
    nodeEnv,
    dataDir: path.resolve(str(env, 'DATA_DIR') ?? './.data'),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 10, { min: 1, max: 1000 }),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    jwtSecret,
    jwksUrl: url(env, 'JWKS_URL', ['http:', 'https:']),
    trustProxy: bool(env, 'TRUST_PROXY', false),
    rateLimit: {
      votesPerMinute: int(env, 'RATE_LIMIT_VOTES_PER_MINUTE', 10, { min: 1 }),
      reactionsPerMinute: int(env, 'RATE_LIMIT_REACTIONS_PER_MINUTE', 30, { min: 1 }),
      messagesPerMinute: int(env, 'RATE_LIMIT_MESSAGES_PER_MINUTE', 30, { min: 1 }),
    },
    fraudDetectionEnabled: bool(env, 'FRAUD_DETECTION_ENABLED', true),
    tallyFlushMs: int(env, 'TALLY_FLUSH_MS', 100, { min: 1, max: 60_000 }),
    reactionWindowMs: int(env, 'REACTION_WINDOW_MS', 250, { min: 10, max: 60_000 }),
    typingTtlMs: int(env, 'TYPING_TTL_MS', 5000, { min: 100 }),
    presenceOfflineGraceMs: int(env, 'PRESENCE_OFFLINE_GRACE_MS', 5000, { min: 0 }),
    maxSubscriptionsPerConnection: int(env, 'MAX_SUBSCRIPTIONS_PER_CONNECTION', 100, { min: 1 }),
    wsKeepAliveMs: int(env, 'WS_KEEP_ALIVE_MS', 12_000, { min: 100 }),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 8000, { min: 100, max: 60_000 }),
    logLevel: oneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error', 'silent'] as const, 'info'),
    offerMinExpirySeconds: int(env, 'OFFER_MIN_EXPIRY_SECONDS', 10, { min: 1, max: 604_800 }),
  };
}
