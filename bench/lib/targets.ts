/**
 * Starts a target server as a child process on a free loopback port and waits for /ready, each
 * compiled to JavaScript first (build.ts ensureBuilt, as production runs it):
 *  - ovation:    node dist/main.js  (fresh temp DATA_DIR → embedded PGlite, or DATABASE_URL)
 *  - stock-yoga: node bench/.build/stock-yoga.js
 *  - raw-ws:     node bench/.build/raw-ws.js
 * stop() sends SIGTERM to that PID (graceful: --cpu-prof gets written), SIGKILL after 20 s.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt, REFERENCE_BUILD_DIR } from './build.js';
import { stopChild, trackChild, type ExitStatus } from './children.js';
import { getHead, getStatus } from './http.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type TargetName = 'ovation' | 'stock-yoga' | 'raw-ws';
export const TARGETS: readonly TargetName[] = ['ovation', 'stock-yoga', 'raw-ws'];

export interface TargetOptions {
  target: TargetName;
  /** Coalescing window. ovation: TALLY_FLUSH_MS (0 → 1, its minimum); references: --flush-ms (0 = every vote). */
  flushMs: number;
  jwtSecret: string;
  databaseUrl?: string;
  /** Directory for `node --cpu-prof` output, or undefined. */
  cpuProfDir?: string;
  /** Node/V8 flags NODE_OPTIONS refuses (e.g. --trace-gc-nvp), before the script. */
  nodeArgs?: readonly string[];
  /** Extra environment for the child (ovation: DATABASE_POOL_SIZE etc.). */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
  /** Scheduling priority (nice value, negative = ahead of other work; root only). 0 = inherit. */
  priority?: number;
  /** ovation WORKERS: ready once this many distinct instances answer /health (default 1). */
  workers?: number;
}

export interface RunningTarget {
  name: TargetName;
  pid: number;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  startMs: number;
  output(): string;
  stop(): Promise<ExitStatus>;
}

/**
 * Distinct instance ids (`x-yoga-id`) answering /health over new connections: with WORKERS, /ready
 * answers as soon as the first worker listens, and load must not start before every one does.
 */
async function instancesAnswering(url: string, expected: number): Promise<number> {
  if (expected <= 1) return 1;
  const ids = new Set<string>();
  for (let i = 0; i < expected * 4 && ids.size < expected; i++) {
    const { headers } = await getHead(`${url}/health`);
    if (typeof headers['x-yoga-id'] === 'string') ids.add(headers['x-yoga-id']);
  }
  return ids.size;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// METRICS_ENABLED passes through so a run can compare the server with and without metrics side by side.
const PASSTHROUGH = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'METRICS_ENABLED'];

/**
 * The Dockerfile's NODE_OPTIONS (the heap bound production runs with), for every target alike;
 * `--server-env NODE_OPTIONS=` overrides it.
 */
function productionNodeOptions(): string {
  const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
  return /^ENV NODE_OPTIONS="([^"]*)"/m.exec(dockerfile)?.[1] ?? '';
}
const OUTPUT_LIMIT = 4_000_000;

export async function startTarget(opts: TargetOptions): Promise<RunningTarget> {
  ensureBuilt();
  const port = await freePort();
  const profArgs = [
    ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : []),
    ...(opts.nodeArgs ?? []),
  ];
  const baseEnv: Record<string, string> = Object.fromEntries(
    PASSTHROUGH.flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])),
  );
  let dataDir: string | undefined;
  let args: string[];
  let env: Record<string, string>;
  if (opts.target === 'ovation') {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-bench-data-'));
    args = [...profArgs, 'dist/main.js'];
    env = {
      ...baseEnv,
      NODE_ENV: 'production',
      NODE_OPTIONS: productionNodeOptions(),
      LOG_LEVEL: 'warn',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      JWT_SECRET: opts.jwtSecret,
      TALLY_FLUSH_MS: String(Math.max(1, opts.flushMs)),
      // Every simulated person has their own X-Forwarded-For address (bench/lib/http.ts clientIp),
      // so per-IP rate limits and the fraud rules run as in production without tripping.
      TRUST_PROXY: 'true',
      ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : {}),
      ...opts.env,
    };
  } else {
    args = [
      ...profArgs,
      path.join(REFERENCE_BUILD_DIR, `${opts.target}.js`),
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--flush-ms',
      String(opts.flushMs),
    ];
    env = {
      ...baseEnv,
      NODE_ENV: 'production',
      NODE_OPTIONS: productionNodeOptions(),
      JWT_SECRET: opts.jwtSecret,
      ...opts.env,
    };
  }

  const started = Date.now();
  // `nice` execs the command, so the PID is still the server's and every thread inherits the value.
  const [cmd, cmdArgs] = opts.priority
    ? ['nice', ['-n', String(opts.priority), process.execPath, ...args]]
    : [process.execPath, args];
  const child = trackChild(
    spawn(cmd, cmdArgs, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }),
    opts.target,
    OUTPUT_LIMIT,
  );
  const { pid, output } = child;

  let stopping: Promise<ExitStatus> | undefined;
  const stop = (): Promise<ExitStatus> =>
    (stopping ??= (async () => {
      const result = await stopChild(child, 'SIGTERM', 20_000);
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
      return result;
    })());

  const url = `http://127.0.0.1:${port}`;
  const deadline = started + (opts.readyTimeoutMs ?? 120_000);
  try {
    for (;;) {
      if (child.hasExited()) throw new Error(`${opts.target} exited during start-up:\n${output().slice(-4000)}`);
      if (
        (await getStatus(`${url}/ready`)) === 200 &&
        (await instancesAnswering(url, opts.workers ?? 1)) >= (opts.workers ?? 1)
      )
        break;
      if (Date.now() > deadline)
        throw new Error(
          `${opts.target} not ready within ${opts.readyTimeoutMs ?? 120_000} ms:\n${output().slice(-4000)}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  } catch (error) {
    await stop();
    throw error;
  }

  return {
    name: opts.target,
    pid,
    url,
    graphqlUrl: `${url}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    startMs: Date.now() - started,
    output,
    stop,
  };
}
