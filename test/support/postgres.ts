/**
 * Test harness: a real, throwaway PostgreSQL server on a free 127.0.0.1 port.
 *
 *   const postgres = await startPostgres();
 *   const url = await createTestDatabase(postgres.url); // a fresh database per test or file
 *   // ... new pg.Pool({ connectionString: url }) ...
 *   await postgres.stop();
 *
 * Each server gets its own `initdb` in a fresh temporary directory (which also holds its Unix
 * socket), runs in the foreground as a child of the test process with durability switched off for
 * speed (fsync, synchronous_commit, full_page_writes), and is stopped by PID. PostgreSQL refuses to
 * run as root, so as root the server runs as the `postgres` OS user, which owns the directory.
 * Binaries: $POSTGRES_BIN_DIR, else the newest /usr/lib/postgresql/<version>/bin (Debian's layout).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, realpath, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { MIGRATIONS_DIR } from '../../src/infra/database.js';
import { applyMigrations, pgPoolRunner } from '../../src/infra/migrate.js';
import { freePort, PortInUseError, withFreePort } from './ports.js';
import { OutputTail, killOnExit } from './processes.js';

const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';

export interface PostgresServer {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres`, a superuser without password (trust). */
  url: string;
  host: string;
  port: number;
  pid: number;
  /** The server's private directory (data in `data/`, the socket beside it), removed by stop(). */
  dir: string;
  /** Fast shutdown (SIGINT), SIGKILL if that hangs, then removes the directory. Safe to call twice. */
  stop(): Promise<void>;
  /**
   * A database restart, as an operator's `pg_ctl -m fast restart` does it: fast shutdown (clients
   * are disconnected, acknowledged commits stay on disk), `whileDown` runs, then the server starts
   * again on the same port and data directory (`pid` changes). Resolves once it accepts connections.
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
}

export interface StartPostgresOptions {
  /** How long initdb may take. Default 60 s. */
  initdbTimeoutMs?: number;
  /** How long to wait for the server to accept connections, per port tried. Default 30 s. */
  startTimeoutMs?: number;
  /** How long stop() waits after SIGINT before SIGKILL. Default 10 s. */
  stopTimeoutMs?: number;
  /** Ports to try before giving up when another process wins the bind race. Default 5. */
  portAttempts?: number;
  /** Directory holding initdb and postgres. Default: see the module comment. */
  binDir?: string;
  /** Extra `-c name=value` settings, after the harness's own. */
  settings?: Record<string, string>;
  /** Where ports come from; default {@link freePort}. */
  getPort?: () => Promise<number>;
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const binDir = options.binDir ?? findBinDir();
  const owner = serverUser();

  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-pg-'));
  try {
    if (owner) await chown(dir, owner.uid, owner.gid);
    const dataDir = path.join(await realpath(dir), 'data');
    await initdb(binDir, dataDir, owner, options.initdbTimeoutMs ?? 60_000);
    const onPort = (port: number): Omit<StartOnPort, 'port'> & { port: number } => ({
      binDir,
      dir,
      dataDir,
      port,
      owner,
      startTimeoutMs: options.startTimeoutMs ?? 30_000,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      settings: options.settings ?? {},
    });
    let running = await withFreePort((port) => startOnPort(onPort(port)), {
      attempts: options.portAttempts ?? 5,
      host: HOST,
      getPort: options.getPort ?? (() => freePort(HOST)),
    });
    const { port } = running;
    let stopping: Promise<void> | undefined;
    return {
      url: running.url,
      host: HOST,
      port,
      get pid() {
        return running.pid;
      },
      dir,
      stop() {
        stopping ??= (async () => {
          await running.halt();
          await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
        })();
        return stopping;
      },
      async restart(whileDown) {
        if (stopping) throw new Error('startPostgres: restart() after stop()');
        await running.halt();
        await whileDown?.();
        running = await startOnPort(onPort(port));
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    throw err;
  }
}

/**
 * Creates a fresh database on the server of `adminUrl` (a superuser URL such as
 * {@link PostgresServer.url}) and returns its URL. Default name: `test_<random>`. Empty unless
 * `template` names a database to copy (which must have no open connections while it is copied).
 */
export async function createTestDatabase(
  adminUrl: string,
  nameOrOptions: string | { name?: string; template?: string } = {},
): Promise<string> {
  const { name = `test_${randomBytes(6).toString('hex')}`, template } =
    typeof nameOrOptions === 'string' ? { name: nameOrOptions } : nameOrOptions;
  for (const id of [name, template ?? name]) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(id))
      throw new Error(`createTestDatabase: invalid database name ${JSON.stringify(id)}`);
  }
  await asAdmin(adminUrl, `CREATE DATABASE "${name}"${template ? ` TEMPLATE "${template}"` : ''}`);
  return databaseUrl(adminUrl, name);
}

/** Drops a database made by {@link createTestDatabase}, disconnecting whoever is still on it. */
export async function dropTestDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name))
    throw new Error(`dropTestDatabase: invalid database name ${JSON.stringify(name)}`);
  url.pathname = '/postgres';
  await asAdmin(url.toString(), `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}

/**
 * An error listener for a test's own pg.Pool. `pool.end()` resolves once it has asked its
 * connections to end, not once they have: a `DROP DATABASE ... WITH (FORCE)` right after can
 * still terminate one (FATAL 57P01), and pg-pool re-emits that on the pool, where an 'error'
 * without a listener is an uncaught exception in whichever test file runs next in the worker.
 */
export function ignoreForcedDrop(err: Error & { code?: string }): void {
  if (err.code !== '57P01') throw err;
}

/** Applies prisma/migrations to the database of `url`, as the app does at start-up. */
export async function migrateDatabase(url: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', ignoreForcedDrop);
  try {
    await applyMigrations(pgPoolRunner(pool), MIGRATIONS_DIR);
  } finally {
    // Ends every connection: CREATE DATABASE ... TEMPLATE refuses a source that has any.
    await pool.end();
  }
}

async function asAdmin(adminUrl: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function databaseUrl(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

interface ServerUser {
  uid: number;
  gid: number;
}

/** As root, the `postgres` OS user (PostgreSQL refuses root); otherwise the current user (undefined). */
function serverUser(): ServerUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${SUPERUSER}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error(
      'startPostgres: running as root, but there is no `postgres` OS user to run the server as ' +
        '(PostgreSQL refuses root). Debian: apt-get install postgresql creates it.',
    );
  }
  return { uid: Number(uid), gid: Number(gid) };
}

function findBinDir(): string {
  const fromEnv = process.env.POSTGRES_BIN_DIR;
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions[0] === undefined) {
    throw new Error(
      `startPostgres: no PostgreSQL server binaries under ${root}/<version>/bin — ` +
        'install them (Debian: apt-get install postgresql) or set POSTGRES_BIN_DIR',
    );
  }
  return path.join(root, versions[0], 'bin');
}

/** The environment for the server's processes: ours without PG* variables that could redirect them. */
function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { LC_ALL: 'C', LANG: 'C' };
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG') && !key.startsWith('LC_') && key !== 'LANG') env[key] = value;
  }
  return env;
}

async function initdb(
  binDir: string,
  dataDir: string,
  owner: ServerUser | undefined,
  timeoutMs: number,
): Promise<void> {
  const bin = path.join(binDir, 'initdb');
  const args = [
    '-D',
    dataDir,
    '-U',
    SUPERUSER,
    '--auth=trust',
    '--encoding=UTF8',
    '--locale=C',
    '--no-sync',
    '--no-instructions',
  ];
  const output = new OutputTail();
  const child = spawn(bin, args, {
    cwd: path.dirname(dataDir),
    env: serverEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...owner,
  });
  child.stdout.on('data', (chunk: Buffer) => output.append(chunk));
  child.stderr.on('data', (chunk: Buffer) => output.append(chunk));
  const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, error });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
  if (result.code === 0) return;
  const how = result.error
    ? `cannot run it: ${result.error.message}`
    : result.signal === 'SIGKILL'
      ? `killed after ${timeoutMs} ms`
      : `exit code ${String(result.code)}${result.signal ? `, signal ${result.signal}` : ''}`;
  const tail = output.toString();
  throw new Error(`startPostgres: initdb failed (${bin}, ${how})${tail ? `\n--- initdb output ---\n${tail}` : ''}`, {
    cause: result.error,
  });
}

interface StartOnPort {
  binDir: string;
  dir: string;
  dataDir: string;
  port: number;
  owner: ServerUser | undefined;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  settings: Record<string, string>;
}

/** One run of the server process; `halt` stops it and keeps the directory. */
interface RunningPostgres {
  url: string;
  port: number;
  pid: number;
  halt(): Promise<void>;
}

async function startOnPort(o: StartOnPort): Promise<RunningPostgres> {
  const bin = path.join(o.binDir, 'postgres');
  const settings: Record<string, string> = {
    // Throwaway data: durability costs time and buys nothing here.
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    ...o.settings,
  };
  const args = ['-D', o.dataDir, '-p', String(o.port), '-h', HOST, '-k', path.dirname(o.dataDir)];
  for (const [name, value] of Object.entries(settings)) args.push('-c', `${name}=${value}`);

  const output = new OutputTail();
  const child = spawn(bin, args, {
    cwd: path.dirname(o.dataDir),
    env: serverEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    ...o.owner,
  });
  child.stdout.on('data', (chunk: Buffer) => output.append(chunk));
  child.stderr.on('data', (chunk: Buffer) => output.append(chunk));

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
        // SIGINT is PostgreSQL's "fast shutdown": disconnect clients, checkpoint, exit.
        child.kill('SIGINT');
        const timedOut = await Promise.race([exited.then(() => false), sleep(o.stopTimeoutMs, true, { ref: false })]);
        if (timedOut && !hasExited) {
          child.kill('SIGKILL');
          const stillRunning = await Promise.race([
            exited.then(() => false),
            sleep(o.stopTimeoutMs, true, { ref: false }),
          ]);
          if (stillRunning && !hasExited) {
            throw new Error(`postgres (pid ${child.pid}) on port ${o.port} survived SIGKILL for ${o.stopTimeoutMs} ms`);
          }
        }
      }
      child.stdout.destroy();
      child.stderr.destroy();
    })();
    return stopping;
  };

  const describe = (what: string): string => {
    const tail = output.toString();
    return `startPostgres: ${what} (${bin} on ${HOST}:${o.port}, data ${o.dataDir})${tail ? `\n--- postgres output ---\n${tail}` : ' (no output)'}`;
  };
  // A failed attempt stops the server but keeps the directory (and its initdb) for the next port.
  const fail = async (err: Error): Promise<never> => {
    if (!hasExited) {
      child.kill('SIGKILL');
      await exited;
    }
    child.stdout.destroy();
    child.stderr.destroy();
    throw err;
  };

  if (child.pid === undefined) await exited;

  const url = `postgresql://${SUPERUSER}@${HOST}:${o.port}/postgres`;
  const deadline = Date.now() + o.startTimeoutMs;
  let lastProbeError = 'no attempt yet';
  for (;;) {
    if (hasExited) {
      const result = await exited;
      if (result.error) {
        const hint =
          (result.error as NodeJS.ErrnoException).code === 'ENOENT'
            ? ' — install PostgreSQL or set POSTGRES_BIN_DIR'
            : '';
        return fail(new Error(describe(`cannot run ${bin}: ${result.error.message}${hint}`), { cause: result.error }));
      }
      const how = result.signal ? `signal ${result.signal}` : `exit code ${String(result.code)}`;
      if (/could not bind .* address|address already in use/i.test(output.toString())) {
        return fail(
          new PortInUseError(o.port, describe(`port ${o.port} was taken before postgres could bind it (${how})`)),
        );
      }
      return fail(new Error(describe(`postgres exited during start-up with ${how}`)));
    }
    if (Date.now() >= deadline) {
      return fail(
        new Error(
          describe(`postgres did not accept connections within ${o.startTimeoutMs} ms; last probe: ${lastProbeError}`),
        ),
      );
    }
    try {
      const dataDirectory = await probe(url, Math.min(2_000, Math.max(100, deadline - Date.now())));
      if (dataDirectory === o.dataDir) break;
      // Another server answered on "our" port: we lost the bind race and ours will exit.
      return fail(
        new PortInUseError(o.port, describe(`a different server (data ${dataDirectory}) answered on port ${o.port}`)),
      );
    } catch (err) {
      lastProbeError = err instanceof Error ? err.message : String(err);
    }
    await sleep(50);
  }

  if (child.pid === undefined) return fail(new Error(describe('postgres has no PID')));
  return { url, port: o.port, pid: child.pid, halt: stop };
}

/** Connects and returns the answering server's data directory (which tells whose server it is). */
async function probe(url: string, timeoutMs: number): Promise<string> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // A server shutting down mid-probe emits 'error' on the client; the query rejects anyway.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>(
      `SELECT current_setting('data_directory') AS data_directory`,
    );
    const dataDirectory = rows[0]?.data_directory;
    if (dataDirectory === undefined) throw new Error('no data_directory in the reply');
    return dataDirectory;
  } finally {
    await client.end().catch(() => undefined);
  }
}
