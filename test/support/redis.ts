/**
 * Test harness: a real, throwaway `redis-server` on a free 127.0.0.1 port.
 *
 *   const redis = await startRedis();
 *   // ... new Redis(redis.url) ...
 *   await redis.stop();
 *
 * Each server gets its own port and its own temporary `--dir`, keeps nothing on disk
 * (`--save '' --appendonly no`), runs in the foreground as a child of the test process and is
 * stopped by PID. The binary is `redis-server` from PATH unless REDIS_SERVER_BIN says otherwise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, PortInUseError, withFreePort } from './ports.js';
import { OutputTail, killOnExit } from './processes.js';

const HOST = '127.0.0.1';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  host: string;
  port: number;
  pid: number;
  /** The server's private working directory, removed by stop(). */
  dir: string;
  /** Kills the server (SIGTERM, then SIGKILL) and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

export interface StartRedisOptions {
  /** How long to wait for the server to answer PING, per port tried. Default 20 s. */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGTERM before SIGKILL. Default 5 s. */
  stopTimeoutMs?: number;
  /** Ports to try before giving up when another process wins the bind race. Default 5. */
  portAttempts?: number;
  /** The redis-server binary. Default: $REDIS_SERVER_BIN, else `redis-server` from PATH. */
  bin?: string;
  /** Extra `--name value` arguments passed to redis-server after the harness's own. */
  extraArgs?: readonly string[];
  /** Where ports come from; default {@link freePort}. Tests use it to force a bind race. */
  getPort?: () => Promise<number>;
}

export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const bin = options.bin ?? process.env.REDIS_SERVER_BIN ?? 'redis-server';
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
  return withFreePort((port) => startOnPort(bin, port, startTimeoutMs, stopTimeoutMs, options.extraArgs ?? []), {
    attempts: options.portAttempts ?? 5,
    host: HOST,
    getPort: options.getPort ?? (() => freePort(HOST)),
  });
}

async function startOnPort(
  bin: string,
  port: number,
  startTimeoutMs: number,
  stopTimeoutMs: number,
  extraArgs: readonly string[],
): Promise<RedisServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--logfile',
    '',
    '--loglevel',
    'notice',
    ...extraArgs,
  ];
  const output = new OutputTail();
  let child: ChildProcess;
  try {
    child = spawn(bin, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`startRedis: cannot spawn ${bin}: ${errorMessage(err)}`, { cause: err });
  }
  child.stdout?.on('data', (chunk: Buffer) => output.append(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.append(chunk));

  // Settles once, with the way the process ended (or failed to start).
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  killOnExit(child);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!hasExited) {
        child.kill('SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), sleep(stopTimeoutMs, true, { ref: false })]);
        if (timedOut && !hasExited) {
          child.kill('SIGKILL');
          const stillRunning = await Promise.race([
            exited.then(() => false),
            sleep(stopTimeoutMs, true, { ref: false }),
          ]);
          if (stillRunning && !hasExited) {
            throw new Error(`redis-server (pid ${child.pid}) on port ${port} survived SIGKILL for ${stopTimeoutMs} ms`);
          }
        }
      }
      // The process is gone; drop the pipes so that no handle keeps the test process alive.
      child.stdout?.destroy();
      child.stderr?.destroy();
      await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    })();
    return stopping;
  };

  const describe = (what: string): string => {
    const tail = output.toString();
    return `startRedis: ${what} (${bin} on ${HOST}:${port}, dir ${dir})${tail ? `\n--- redis-server output ---\n${tail}` : ' (no output)'}`;
  };

  const failAndCleanUp = async (err: Error): Promise<never> => {
    await stop().catch(() => undefined);
    throw err;
  };

  // A binary that cannot be run at all (ENOENT, EACCES) reports it on the next tick, with no PID.
  if (child.pid === undefined) await exited;

  const deadline = Date.now() + startTimeoutMs;
  let lastProbeError = 'no attempt yet';
  for (;;) {
    if (hasExited) {
      const result = await exited;
      if (result.error) {
        const hint =
          (result.error as NodeJS.ErrnoException).code === 'ENOENT'
            ? ` — is redis-server installed? (Debian: apt-get install redis-server; .ci/run does this) or set REDIS_SERVER_BIN`
            : '';
        return failAndCleanUp(
          new Error(describe(`cannot run ${bin}: ${result.error.message}${hint}`), { cause: result.error }),
        );
      }
      const how = result.signal ? `signal ${result.signal}` : `exit code ${String(result.code)}`;
      if (/address already in use|could not create server tcp listening socket/i.test(output.toString())) {
        return failAndCleanUp(
          new PortInUseError(port, describe(`port ${port} was taken before redis-server could bind it (${how})`)),
        );
      }
      return failAndCleanUp(new Error(describe(`redis-server exited during start-up with ${how}`)));
    }
    if (Date.now() >= deadline) {
      return failAndCleanUp(
        new Error(
          describe(`redis-server did not answer PING within ${startTimeoutMs} ms; last probe: ${lastProbeError}`),
        ),
      );
    }
    try {
      const pid = await probe(port, Math.min(1_000, Math.max(50, deadline - Date.now())));
      if (pid === child.pid) break;
      // Someone else's redis answered on "our" port: we lost the bind race and ours will exit.
      lastProbeError = `a different redis-server (pid ${pid}) answered on port ${port}`;
      await Promise.race([exited, sleep(2_000, undefined, { ref: false })]);
      return failAndCleanUp(new PortInUseError(port, describe(lastProbeError)));
    } catch (err) {
      lastProbeError = errorMessage(err);
    }
    await sleep(25);
  }

  if (child.pid === undefined) return failAndCleanUp(new Error(describe('redis-server has no PID')));
  return { url: `redis://${HOST}:${port}`, host: HOST, port, pid: child.pid, dir, stop };
}

/**
 * Sends `PING` and `INFO server` over a raw RESP connection. Resolves with the answering server's
 * process_id once it replies +PONG; rejects on anything else (connection refused, -LOADING, ...).
 */
function probe(port: number, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    let buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (err: Error | null, pid?: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(pid!);
    };
    const timer = setTimeout(() => finish(new Error(`no complete reply within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (err) => finish(err));
    socket.once('close', () => finish(new Error('connection closed before a complete reply')));
    socket.once('connect', () => {
      socket.write('*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n');
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      try {
        const first = parseReply(buffer, 0);
        if (!first) return;
        if (first.value !== 'PONG') {
          finish(new Error(`PING answered ${JSON.stringify(first.value)}`));
          return;
        }
        const second = parseReply(buffer, first.end);
        if (!second) return;
        const match = /^process_id:(\d+)\r?$/m.exec(second.value);
        if (!match?.[1]) {
          finish(new Error(`INFO server reply has no process_id: ${JSON.stringify(second.value.slice(0, 200))}`));
          return;
        }
        finish(null, Number(match[1]));
      } catch (err) {
        finish(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
}

/** Parses one RESP2 simple string, error, integer or bulk string reply; null if incomplete. */
function parseReply(buffer: Buffer, start: number): { value: string; end: number } | null {
  const lineEnd = buffer.indexOf('\r\n', start);
  if (lineEnd === -1) return null;
  const type = String.fromCharCode(buffer[start] ?? 0);
  const line = buffer.toString('utf8', start + 1, lineEnd);
  switch (type) {
    case '+':
    case ':':
      return { value: line, end: lineEnd + 2 };
    case '-':
      throw new Error(`server replied with error: ${line}`);
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: '', end: lineEnd + 2 };
      const bodyEnd = lineEnd + 2 + length;
      if (buffer.length < bodyEnd + 2) return null;
      return { value: buffer.toString('utf8', lineEnd + 2, bodyEnd), end: bodyEnd + 2 };
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
