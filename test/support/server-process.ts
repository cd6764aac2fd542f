/**
 * Runs the real server (src/main.ts) as a child process on a free loopback port for end-to-end
 * tests: several instances, signals, exit codes. Compiled, the way production runs it, where the
 * tier provides the build (test/support/server-build.ts); `npm start`'s way (tsx) otherwise, or
 * when asked (`sources`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from './ports.js';
import { TEST_JWT_SECRET } from './graphql.js';
import { TEST_RATE_LIMITS } from './limits.js';
import { until } from './until.js';
import { provided } from './provided.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServerProcess {
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  pid: number;
  dataDir: string;
  output(): string;
  /**
   * Moves the process's wall clock `ms` forward (started with `movableClock`; see
   * test/support/process-clock.ts) and resolves once the process has taken the step.
   */
  advanceClock(ms: number): Promise<void>;
  /** Sends `signal` (default SIGTERM) and resolves when the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>;
}

const CLOCK_ACK = '[process-clock] offset ';
const CLOCK_PRELOAD = path.join(ROOT, 'test/support/process-clock.ts'); // after tsx, which compiles it

const PASSTHROUGH = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT'];

/**
 * `npm start`'s command with `env` (on 127.0.0.1, the test JWT secret, LOG_LEVEL=info), expected
 * to exit by itself: a start-up that fails. Killed after `timeoutMs`.
 */
export function startExpectingExit(
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env['PATH'],
      HOME: process.env['HOME'],
      HOST: '127.0.0.1',
      JWT_SECRET: TEST_JWT_SECRET,
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stderr, stdout });
    }),
  );
}

/**
 * Puts a copy of the tier's migrated PGlite directory (test/support/shared-servers.ts) into
 * `dataDir`, where a server process started on it finds its database, as startServerProcess does
 * for a data dir of its own: for tests that bring a data dir to restart on it, whose subject is
 * not the first start (zero-setup, readme and example keep opening an empty one). No-op in a tier
 * without the shared fixtures.
 */
export async function seedPGlite(dataDir: string): Promise<void> {
  const pgliteTemplate = provided('pgliteTemplateDir');
  if (pgliteTemplate) await cp(pgliteTemplate, path.join(dataDir, 'pglite'), { recursive: true });
}

/** Marker files of test/support/server-build.ts: the build is complete, or failed (the error inside). */
export const SERVER_BUILT = 'built';
export const SERVER_BUILD_FAILED = 'build-failed';

let builtServer: Promise<string | undefined> | undefined;

/** The tier's compiled server directory once its build is complete (it runs during the unit tier). */
function serverBuild(): Promise<string | undefined> {
  builtServer ??= (async () => {
    const dir = provided('serverBuildDir');
    if (dir === undefined) return undefined;
    return until(120_000, 'the server build (test/support/server-build.ts)', async () => {
      if (existsSync(path.join(dir, SERVER_BUILT))) return dir;
      if (existsSync(path.join(dir, SERVER_BUILD_FAILED)))
        throw new Error(`the server build failed:\n${await readFile(path.join(dir, SERVER_BUILD_FAILED), 'utf8')}`);
      return undefined;
    });
  })();
  return builtServer;
}

/** The compiled server where the tier provides one (test/support/server-build.ts), else the sources through tsx. */
async function defaultEntry(opts: { movableClock?: boolean; sources?: boolean }): Promise<string[]> {
  const build = opts.sources ? undefined : await serverBuild();
  if (build === undefined) {
    return opts.movableClock
      ? ['--import', 'tsx', '--import', CLOCK_PRELOAD, 'src/main.ts']
      : ['--import', 'tsx', 'src/main.ts'];
  }
  const clock = pathToFileURL(path.join(build, 'test-support', 'process-clock.js')).href;
  return [...(opts.movableClock ? ['--import', clock] : []), path.join(build, 'dist', 'main.js')];
}

export async function startServerProcess(
  env: Record<string, string> = {},
  opts: {
    dataDir?: string;
    /**
     * Node arguments that start the server [the tier's compiled server, see server-build.ts; else
     * the sources through tsx]; e.g. `['dist/main.js']` for the repository's build.
     */
    entry?: string[];
    /** Working directory [the repository]; e.g. a production install of the build. */
    cwd?: string;
    /**
     * Preload test/support/process-clock.ts (not with `entry`): the test may move the process's
     * wall clock forward with advanceClock. One process: WORKERS' workers are not stepped.
     */
    movableClock?: boolean;
    /**
     * Run `npm start`'s command (src/main.ts through tsx) even where the tier provides a compiled
     * server (test/support/server-build.ts, the default there): for tests whose subject is it.
     */
    sources?: boolean;
  } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'ovation-e2e-')));
  // Like startTestApp: the sources on the embedded default, on a data dir of their own, start from
  // a copy of the tier's migrated PGlite directory (test/support/shared-servers.ts) instead of
  // paying PGlite's initdb at every boot. A test that brings its own data dir (a first start, a
  // restart) or runs a build (production-image: its own migrations) opens what it brought.
  const onEmbedded = !env['DATABASE_URL'] && opts.entry === undefined && opts.cwd === undefined;
  if (ownDataDir && onEmbedded) await seedPGlite(dataDir);
  const clockFile = path.join(dataDir, 'clock-offset');
  if (opts.movableClock && opts.entry)
    throw new Error('startServerProcess: movableClock preloads into the default entry only');
  const entry = opts.entry ?? (await defaultEntry(opts));
  const child: ChildProcess = spawn(process.execPath, entry, {
    cwd: opts.cwd ?? ROOT,
    env: {
      ...Object.fromEntries(PASSTHROUGH.flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : []))),
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      JWT_SECRET: TEST_JWT_SECRET,
      // Off unless a test asks (see test/support/app.ts).
      FRAUD_DETECTION_ENABLED: 'false',
      ...TEST_RATE_LIMITS,
      ...(opts.movableClock && { CLOCK_OFFSET_FILE: clockFile }),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const state = await Promise.race([
      exited.then(() => 'exited' as const),
      new Promise((r) => setTimeout(r, 100)).then(() => 'waiting' as const),
    ]);
    if (state === 'exited') throw new Error(`server exited during start-up:\n${output}`);
    const ready = await fetch(`${url}/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready within 60 s:\n${output}`);
    }
  }

  let stopping: ReturnType<ServerProcess['stop']> | undefined;
  let clockOffset = 0;
  let clockSteps = 0;
  return {
    url,
    graphqlUrl: `${url}/graphql`,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    pid: child.pid!,
    dataDir,
    output: () => output,
    async advanceClock(ms) {
      if (!opts.movableClock) throw new Error('advanceClock: start the server with movableClock');
      clockOffset += ms;
      clockSteps += 1;
      const step = clockSteps;
      await writeFile(clockFile, String(clockOffset));
      child.kill('SIGUSR2');
      await until(5_000, `the server's clock step to ${clockOffset} ms`, () =>
        output.split(CLOCK_ACK).length - 1 >= step ? true : undefined,
      );
    },
    stop(signal = 'SIGTERM') {
      stopping ??= (async () => {
        const started = Date.now();
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        const result = await exited;
        clearTimeout(killer);
        if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
        return { ...result, ms: Date.now() - started };
      })();
      return stopping;
    },
  };
}
