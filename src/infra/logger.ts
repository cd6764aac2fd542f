/**
 * A small leveled logger: one line per entry on stderr, JSON in production (for log shippers),
 * readable text otherwise. Its shape fits Yoga's `logging` option.
 */
import type { LogLevel } from '../config.js';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

function errorFields(value: unknown): unknown {
  return value instanceof Error ? { name: value.name, message: value.message, stack: value.stack } : value;
}

export function createLogger(opts: { level: LogLevel; json: boolean; write?: (line: string) => void }): Logger {
  const threshold = ORDER[opts.level];
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: Exclude<LogLevel, 'silent'>) => (message: unknown, fields?: unknown) => {
    if (ORDER[level] < threshold) return;
    const extra = fields === undefined ? undefined : typeof fields === 'object' && fields !== null && !(fields instanceof Error)
      ? Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, errorFields(v)]))
      : { detail: errorFields(fields) };
    const text = message instanceof Error ? message.message : String(message);
    if (opts.json) {
      write(JSON.stringify({ time: new Date().toISOString(), level, msg: text, ...extra }));
    } else {
      write(`${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${text}${extra ? ' ' + JSON.stringify(extra) : ''}`);
    }
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}
