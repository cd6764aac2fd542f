/**
 * The database behind Prisma: PostgreSQL when a URL is configured, otherwise an embedded PGlite
 * (PostgreSQL compiled to WebAssembly, in this process) that keeps its data under `dataDir`.
 * Either way the migrations of prisma/migrations are applied before the client is handed out.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaClient } from '../generated/prisma/client.js';
import { lockDataDir } from './data-dir-lock.js';
import { applyMigrations, pgliteRunner, pgPoolRunner } from './migrate.js';

export interface Database {
  prisma: PrismaClient;
  kind: 'postgres' | 'pglite';
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
}

/**
 * prisma/migrations, found from this file rather than the working directory, so the app can be
 * started from anywhere; the same relative path holds from src/infra and from dist/infra.
 */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../prisma/migrations', import.meta.url));

/**
 * Interactive transactions queue for PGlite's single session: with many concurrent requests the
 * last one waits for all the others, so Prisma's 2 s default to start one is too short.
 */
const PGLITE_TRANSACTION_MAX_WAIT_MS = 30_000;
/** How long an interactive transaction may wait for a pooled PostgreSQL connection. */
const POSTGRES_TRANSACTION_MAX_WAIT_MS = 10_000;

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const log = opts.log ?? (() => undefined);
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts.poolSize ?? 10, log) : openPGlite(opts.dataDir, log);
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
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool), transactionOptions: { maxWait: POSTGRES_TRANSACTION_MAX_WAIT_MS } });
  log(`database: PostgreSQL at ${redactUrl(databaseUrl)} (pool of ${poolSize})`);
  return {
    ...wrap(prisma, 'postgres', () => pool.end()),
    poolUsage: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: poolSize }),
  };
}

async function openPGlite(dataDir: string, log: (msg: string) => void): Promise<Database> {
  // Before PGlite touches a file: a second process on these files would lose writes.
  const lock = await lockDataDir(dataDir);
  const dir = path.resolve(dataDir, 'pglite');
  let db: PGlite | undefined;
  try {
    await mkdir(dir, { recursive: true });
    db = await PGlite.create(dir);
    // Before Prisma exists: PGlite has one session, and the migrations' BEGIN..COMMIT must not
    // interleave with anyone else's statements.
    await applyMigrations(pgliteRunner(db), MIGRATIONS_DIR, log);
  } catch (err) {
    await db?.close().catch(() => undefined);
    await lock.release();
    throw err;
  }
  const pglite = db;
  // The adapter runs each interactive transaction inside PGlite's transaction(), which holds
  // PGlite's mutex: transactions and queries from concurrent requests queue instead of
  // interleaving on the one session. (A query through `prisma` instead of `tx` inside a
  // transaction callback would wait for the transaction itself, until its timeout.)
  const prisma = new PrismaClient({
    adapter: new PrismaPGlite(pglite),
    transactionOptions: { maxWait: PGLITE_TRANSACTION_MAX_WAIT_MS },
  });
  log(`database: embedded PGlite in ${dir}`);
  return wrap(prisma, 'pglite', async () => {
    try {
      await pglite.close();
    } finally {
      await lock.release();
    }
  });
}

function wrap(prisma: PrismaClient, kind: Database['kind'], closeDriver: () => Promise<void>): Database {
  let closing: Promise<void> | undefined;
  return {
    prisma,
    kind,
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
