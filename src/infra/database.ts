/**
 * The database behind Prisma: PostgreSQL when a URL is configured, otherwise an embedded PGlite
 * (PostgreSQL compiled to WebAssembly) that keeps its data under `dataDir` and runs in a thread of
 * its own (pglite-thread.ts). Both are reached the same way, node-postgres and Prisma's adapter-pg
 * speaking the PostgreSQL wire protocol, and either way the migrations of prisma/migrations are
 * applied (migrate.ts, over that same pool) before the client is handed out.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { lockDataDir } from './data-dir-lock.js';
import { applyMigrations, pgPoolRunner } from './migrate.js';
import { startPGliteThread, type PGliteThread } from './pglite-thread.js';

export interface Database {
  prisma: PrismaClient;
  kind: 'postgres' | 'pglite';
  /** Connections that can run at the same time: the pool's size, 1 for PGlite (one session). */
  connections: number;
  /** Resolves when the database answers `SELECT 1` through Prisma; rejects otherwise. */
  ping(): Promise<void>;
  /** Disconnects Prisma, then closes the pool or PGlite. Safe to call twice. */
  close(): Promise<void>;
  /** The pg pool's connections (PostgreSQL only; PGlite has one session). */
  poolUsage?(): { total: number; idle: number; waiting: number; max: number };
}

export interface OpenDatabaseOptions {
  /** A `postgresql://` URL. Unset: embedded PGlite under `<dataDir>/pglite`, locked to this process (data-dir-lock.ts). */
  databaseUrl?: string | undefined;
  /** Where embedded data lives (created if missing). Unused with a URL. */
  dataDir: string;
  /** Connections in the pg pool. Default 10 (pg's default). Unused with PGlite (one session). */
  poolSize?: number | undefined;
  log?: (msg: string) => void;
  /**
   * The embedded database died under the app (its thread crashed): nothing can be written any
   * more. Default: one line on stderr and exit code 1 (exitOnDatabaseLoss).
   */
  onFatal?: (error: Error) => void;
}

/**
 * prisma/migrations, found from this file rather than the working directory, so the app can be
 * started from anywhere; the same relative path holds from src/infra and from dist/infra.
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

/**
 * Everything queues for PGlite's single session (the pool has one connection): with many
 * concurrent requests the last one waits for all the others, so Prisma's 2 s default to start an
 * interactive transaction is too short. The same bound applies to waiting for the connection.
 */
const PGLITE_WAIT_MS = 30_000;
/** How long an interactive transaction may wait for a pooled PostgreSQL connection. */
const POSTGRES_TRANSACTION_MAX_WAIT_MS = 10_000;

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const log = opts.log ?? (() => undefined);
  return opts.databaseUrl
    ? openPostgres(opts.databaseUrl, opts.poolSize ?? 10, log)
    : openPGlite(opts.dataDir, log, opts.onFatal ?? exitOnDatabaseLoss);
}

/** The default onFatal: the process cannot serve without its database; say so in one line and exit. */
export function exitOnDatabaseLoss(error: Error): never {
  process.stderr.write(`${fatalLine(error)}\n`);
  process.exit(1);
}

export function fatalLine(error: Error): string {
  return `Ovation: the embedded database stopped (${error.message.replace(/\s*\n\s*/g, ' ').trim()}); exiting`;
}

async function openPostgres(databaseUrl: string, poolSize: number, log: (msg: string) => void): Promise<Database> {
  // connectionTimeoutMillis: an unreachable server fails start-up (and a request that cannot get
  // a connection) after 10 s instead of hanging on the OS's TCP timeout.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: poolSize, connectionTimeoutMillis: 10_000 });
  // An idle client whose server goes away emits 'error' on the pool; unhandled, it kills the
  // process. The next query gets a fresh connection, so logging is enough.
  pool.on('error', (err) => log(`database: idle connection lost: ${err.message}`));
  try {
    await applyMigrations(pgPoolRunner(pool), MIGRATIONS_DIR, log);
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
  // An external pool: the adapter never ends it, close() below does.
  // A burst (a room voting at once, a bulk announcement) queues more interactive transactions than
  // the pool has connections: waiting for one is better than failing the request after Prisma's
  // default 2 s. The statement timeout still bounds a transaction once it runs.
  const prisma = new PrismaClient({
    adapter: new PrismaPg(pool),
    transactionOptions: { maxWait: POSTGRES_TRANSACTION_MAX_WAIT_MS },
  });
  log(`database: PostgreSQL at ${redactUrl(databaseUrl)} (pool of ${poolSize})`);
  return {
    ...wrap(prisma, 'postgres', poolSize, () => pool.end()),
    poolUsage: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: poolSize }),
  };
}

async function openPGlite(
  dataDir: string,
  log: (msg: string) => void,
  onFatal: (error: Error) => void,
): Promise<Database> {
  // Before PGlite touches a file: a second process on these files would lose writes.
  const lock = await lockDataDir(dataDir);
  const dir = path.resolve(dataDir, 'pglite');
  let thread: PGliteThread | undefined;
  let pool: pg.Pool | undefined;
  try {
    thread = await startPGliteThread({ dir, log, onCrash: onFatal });
    // One connection: PGlite is one session. Interactive transactions hold it from BEGIN to
    // COMMIT while everything else waits in the pool's queue (in arrival order), so transactions
    // run one after another and never interleave. (A query through `prisma` instead of `tx` inside
    // a transaction callback waits for that transaction itself, until PGLITE_WAIT_MS.) Kept while
    // idle (reconnecting costs a session reset), and unref'd then, as a socket would be.
    pool = new pg.Pool({
      stream: thread.connect,
      user: 'postgres',
      database: 'postgres',
      max: 1,
      idleTimeoutMillis: 0,
      allowExitOnIdle: true,
      connectionTimeoutMillis: PGLITE_WAIT_MS,
    });
    pool.on('error', (err) => log(`database: embedded connection lost: ${err.message}`));
    await applyMigrations(pgPoolRunner(pool), MIGRATIONS_DIR, log);
  } catch (err) {
    await pool?.end().catch(() => undefined);
    await thread?.close().catch(() => undefined);
    await lock.release();
    throw err;
  }
  const [openPool, openThread] = [pool, thread];
  const prisma = new PrismaClient({ adapter: new PrismaPg(openPool), transactionOptions: { maxWait: PGLITE_WAIT_MS } });
  log(`database: embedded PGlite in ${dir} (its own thread, one session)`);
  return wrap(prisma, 'pglite', 1, async () => {
    try {
      await openPool.end();
      await openThread.close();
    } finally {
      await lock.release();
    }
  });
}

function wrap(
  prisma: PrismaClient,
  kind: Database['kind'],
  connections: number,
  closeDriver: () => Promise<void>,
): Database {
  let closing: Promise<void> | undefined;
  return {
    prisma,
    kind,
    connections,
    async ping() {
      await prisma.$queryRaw`SELECT 1`;
    },
    close() {
      closing ??= (async () => {
        try {
          await prisma.$disconnect();
        } finally {
          await closeDriver();
        }
      })();
      return closing;
    },
  };
}

/** The URL without its password, for logs. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
