/**
 * The leveled logger, on pino: one JSON object per line on stderr (for log shippers), pretty
 * (pino-pretty) with NODE_ENV=development. Its shape fits Yoga's `logging` option.
 *
 * Every line written while an operation runs carries that operation's `requestId` (the operations
 * plugin, src/modules/ops/ops.plugin.ts, runs each operation inside `withRequestContext`), so the
 * lines it causes deep in a service can be found from its access line. Credentials never reach
 * the log: the fields that carry them are redacted wherever they appear.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from '../config.js';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger whose lines all carry `fields` too. */
  child(fields: Record<string, unknown>): Logger;
}

/** The operation a log line belongs to. */
export interface RequestContext {
  requestId: string;
}

const requestContext = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` (and everything it starts) as part of the operation `context`. */
export const withRequestContext = <T>(context: RequestContext, fn: () => T): T => requestContext.run(context, fn);

/** Field names whose values are secrets, at any of the first levels of a line's fields. */
const SECRET_KEYS = [
  'authorization',
  'token',
  'accessToken',
  'refreshToken',
  'password',
  'secret',
  'jwtSecret',
  'metricsToken',
  'cookie',
  'signature',
];
export const REDACTED_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((key) => `*.${key}`),
  ...SECRET_KEYS.map((key) => `*.*.${key}`),
  'headers["authorization"]',
  '*.headers["authorization"]',
  'connectionParams.authorization',
];

function errorFields(value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
}

/** pino-pretty when installed (a devDependency): production images log JSON whatever NODE_ENV says. */
function prettyStream(): DestinationStream | undefined {
  try {
    const pretty = createRequire(import.meta.url)('pino-pretty') as (
      options: Record<string, unknown>,
    ) => DestinationStream;
    return pretty({
      destination: 2,
      sync: true,
      colorize: process.stderr.isTTY,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
  } catch {
    return undefined;
  }
}

function wrap(base: PinoLogger): Logger {
  const emit = (level: 'debug' | 'info' | 'warn' | 'error') => (message: unknown, fields?: unknown) => {
    if (!base.isLevelEnabled(level)) return;
    // Yoga logs Error objects (and other values) in both places.
    const extra =
      fields === undefined
        ? undefined
        : typeof fields === 'object' && fields !== null && !(fields instanceof Error)
          ? Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, errorFields(v)]))
          : { detail: errorFields(fields) };
    const text = message instanceof Error ? message.message : String(message);
    if (extra) base[level](extra, text);
    else base[level](text);
  };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => wrap(base.child(fields)),
  };
}

export function createLogger(opts: {
  level: LogLevel;
  /** Human-readable lines (NODE_ENV=development) instead of JSON. */
  pretty?: boolean;
  /** Where lines go (tests); default stderr. */
  write?: (line: string) => void;
}): Logger {
  const write = opts.write;
  const destination: DestinationStream =
    (write ? { write: (line: string) => write(line.endsWith('\n') ? line.slice(0, -1) : line) } : undefined) ??
    (opts.pretty ? prettyStream() : undefined) ??
    pino.destination({ fd: 2, sync: true });
  const base = pino(
    {
      level: opts.level,
      base: undefined, // no pid/hostname on every line: the shipper knows the host; workers add their pid
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin: () => requestContext.getStore() ?? {},
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination,
  );
  return wrap(base);
}
