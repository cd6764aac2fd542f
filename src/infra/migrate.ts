/**
 * Applies `prisma/migrations` at start-up, the way `prisma migrate deploy` does, without Prisma's
 * native schema engine (which cannot be downloaded offline).
 *
 * The folder layout (`<timestamp>_<name>/migration.sql` + `migration_lock.toml`) and the
 * `_prisma_migrations` table are Prisma's own, rows included, so the same database can later be
 * handled by the real `prisma migrate deploy/status/resolve`. Differences, each deliberate:
 * - Every migration runs in one transaction together with its `_prisma_migrations` row. A failing
 *   migration therefore leaves nothing behind, not even a "failed" row, and the next start simply
 *   retries it once it is fixed (Prisma records a failed row and then refuses to continue until
 *   `prisma migrate resolve`, which needs the native engine).
 * - The checksum of every migration already applied is verified (deploy does not; `migrate dev`
 *   does), so an edited migration is reported instead of silently diverging.
 * - Failed rows written by Prisma itself (unfinished, not rolled back) stop us, as they stop deploy.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import type pg from 'pg';

export type SqlRow = Record<string, unknown>;

/** One database session. */
export interface SqlSession {
  /** One statement, with `$1`-style parameters. */
  query<R extends SqlRow = SqlRow>(sql: string, params?: readonly unknown[]): Promise<R[]>;
  /**
   * A whole script, any number of statements, sent as ONE simple-protocol query without parameters,
   * as the native engine sends migrations: `$$` bodies survive and the server does the parsing.
   */
  exec(script: string): Promise<void>;
}

/** A database: any session for one-off statements, plus one dedicated session on demand. */
export interface SqlRunner extends SqlSession {
  /**
   * Runs `fn` on one dedicated connection, so that session state (an advisory lock, an open
   * transaction) stays on the session that created it.
   */
  withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T>;
}

export interface ApplyMigrationsOptions {
  /** How long to wait for another process that is applying migrations. Default 60 s. */
  lockTimeoutMs?: number;
}

/** A migration problem that needs a person: a failed, edited or unreadable migration, a held lock. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/** The advisory lock key that Prisma's schema engine takes, so we and `prisma migrate` exclude each other. */
const PRISMA_MIGRATE_LOCK_KEY = 72707369;

/** Byte for byte the table Prisma's schema engine creates on PostgreSQL. */
const CREATE_MIGRATIONS_TABLE = `CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
`;

interface LocalMigration {
  name: string;
  script: string;
  checksum: string;
}

interface MigrationRow extends SqlRow {
  id: string;
  checksum: string;
  migration_name: string;
  logs: string | null;
  started_at: Date;
  finished_at: Date | null;
  rolled_back_at: Date | null;
}

/**
 * Applies every migration of `migrationsDir` that the database has not applied yet, in folder-name
 * order, each in its own transaction, holding Prisma's advisory lock throughout so that two
 * processes starting at once apply each migration once. Returns the names it applied.
 */
export async function applyMigrations(
  runner: SqlRunner,
  migrationsDir: string,
  log: (msg: string) => void = () => undefined,
  { lockTimeoutMs = 60_000 }: ApplyMigrationsOptions = {},
): Promise<{ applied: string[] }> {
  // Read and checksum the folder before touching the database: a broken folder changes nothing.
  const local = await readMigrationsDir(migrationsDir);

  return runner.withSession(async (session) => {
    await acquireLock(session, lockTimeoutMs);
    try {
      const rows = await loadHistory(session);
      verifyHistory(local, rows, log);
      const done = new Set(rows.filter((r) => r.rolled_back_at === null).map((r) => r.migration_name));
      const applied: string[] = [];
      for (const migration of local) {
        if (done.has(migration.name)) continue;
        const started = Date.now();
        await applyOne(session, migration);
        log(`migrations: applied ${migration.name} in ${Date.now() - started} ms`);
        applied.push(migration.name);
      }
      if (applied.length === 0) log(`migrations: database is up to date (${local.length} migrations)`);
      return { applied };
    } finally {
      // The lock is per session; a pooled session lives on, so give it back explicitly.
      await session.query(`SELECT pg_advisory_unlock(${PRISMA_MIGRATE_LOCK_KEY})`).catch(() => undefined);
    }
  });
}

/** sha256 hex of the script's UTF-8 bytes: the `checksum` Prisma stores. */
export function migrationChecksum(script: string): string {
  return createHash('sha256').update(script, 'utf8').digest('hex');
}

/**
 * Whether `script` matches a stored checksum the way Prisma decides it: line endings do not count
 * (git may rewrite them), and very old Prisma versions stored the hex without zero padding.
 */
export function checksumMatches(script: string, stored: string): boolean {
  const variants = [script, script.replaceAll('\r\n', '\n'), script.replaceAll('\n', '\r\n')];
  const legacy = stored.length !== 0 && stored.length !== 64;
  return variants.some((variant) => {
    const digest = createHash('sha256').update(variant, 'utf8').digest();
    const rendered = legacy ? [...digest].map((byte) => byte.toString(16)).join('') : digest.toString('hex');
    return rendered === stored;
  });
}

/** The migrations of a Prisma migrations folder, in the order Prisma applies them (by folder name). */
export async function readMigrationsDir(migrationsDir: string): Promise<LocalMigration[]> {
  let entries;
  try {
    entries = await readdir(migrationsDir, { withFileTypes: true });
  } catch (err) {
    // An app without its migrations would start on an empty database and fail on the first query.
    throw new MigrationError(`cannot read the migrations folder ${migrationsDir}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
  const lockfile = await readFile(path.join(migrationsDir, 'migration_lock.toml'), 'utf8').catch(() => undefined);
  const provider = lockfile?.match(/^\s*provider\s*=\s*"([^"]*)"/m)?.[1];
  if (provider !== undefined && provider !== 'postgresql') {
    throw new MigrationError(
      `${migrationsDir}/migration_lock.toml says provider "${provider}", but this database is PostgreSQL`,
    );
  }
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Promise.all(
    names.map(async (name) => {
      const file = path.join(migrationsDir, name, 'migration.sql');
      let script: string;
      try {
        script = await readFile(file, 'utf8');
      } catch (err) {
        throw new MigrationError(`migration ${name} has no readable migration.sql (${file}): ${errorMessage(err)}`, {
          cause: err,
        });
      }
      return { name, script, checksum: migrationChecksum(script) };
    }),
  );
}

async function acquireLock(session: SqlSession, timeoutMs: number): Promise<void> {
  // lock_timeout bounds the wait, so a process stuck while holding the lock cannot hang every
  // other start forever. It is session state: set it only around the lock, not the migrations.
  await session.query(`SELECT set_config('lock_timeout', $1, false)`, [`${Math.max(1, Math.round(timeoutMs))}ms`]);
  try {
    await session.query(`SELECT pg_advisory_lock(${PRISMA_MIGRATE_LOCK_KEY})`);
  } catch (err) {
    if (sqlState(err) === '55P03') {
      throw new MigrationError(
        `another process has been applying migrations for more than ${timeoutMs} ms (advisory lock ${PRISMA_MIGRATE_LOCK_KEY} is held); giving up`,
        { cause: err },
      );
    }
    throw err;
  } finally {
    await session.query(`SELECT set_config('lock_timeout', '0', false)`).catch(() => undefined);
  }
}

/** Creates `_prisma_migrations` when missing and returns its rows. Called with the lock held. */
async function loadHistory(session: SqlSession): Promise<MigrationRow[]> {
  const tables = await session.query<{ relname: string }>(
    `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r' AND n.nspname = current_schema()`,
  );
  if (!tables.some((t) => t.relname === '_prisma_migrations')) {
    // Prisma's P3005: tables without a history are not ours to migrate (they would need baselining).
    if (tables.length > 0) {
      const names = tables
        .map((t) => t.relname)
        .sort()
        .join(', ');
      throw new MigrationError(
        `the database schema is not empty (${names}) but has no _prisma_migrations table; ` +
          'refusing to apply migrations over tables they did not create (see "baselining" in the Prisma docs)',
      );
    }
    await session.exec(CREATE_MIGRATIONS_TABLE);
    return [];
  }
  return session.query<MigrationRow>(
    `SELECT id, checksum, migration_name, logs, started_at, finished_at, rolled_back_at
       FROM _prisma_migrations ORDER BY started_at, migration_name`,
  );
}

function verifyHistory(local: LocalMigration[], rows: MigrationRow[], log: (msg: string) => void): void {
  // Same rule and wording as Prisma's P3009: an unfinished, not rolled back row means a migration
  // stopped half-way (written by the native engine or by a crash) and needs a person.
  const failed = rows.filter((r) => r.finished_at === null && r.rolled_back_at === null);
  if (failed.length > 0) {
    const details = failed
      .map(
        (r) =>
          `The \`${r.migration_name}\` migration started at ${r.started_at.toISOString()} failed${r.logs?.trim() ? ` with the following logs:\n${r.logs.trim()}` : ''}`,
      )
      .join('\n');
    throw new MigrationError(
      `found failed migrations in the target database, new migrations will not be applied. ` +
        `Repair the database, then mark them with \`prisma migrate resolve\` or delete their _prisma_migrations rows.\n${details}`,
    );
  }
  const byName = new Map(local.map((m) => [m.name, m]));
  for (const row of rows) {
    if (row.rolled_back_at !== null) continue;
    const migration = byName.get(row.migration_name);
    if (migration === undefined) {
      log(
        `migrations: warning: ${row.migration_name} is applied in the database but missing from the migrations folder`,
      );
    } else if (!checksumMatches(migration.script, row.checksum)) {
      throw new MigrationError(
        `migration ${row.migration_name} was modified after it was applied (checksum ${row.checksum} in the database, ` +
          `${migration.checksum} on disk). Restore the original migration.sql and put the change in a new migration.`,
      );
    }
  }
}

/** One migration and its history row in one transaction: applied and recorded together, or neither. */
async function applyOne(session: SqlSession, migration: LocalMigration): Promise<void> {
  const id = randomUUID();
  await session.exec('BEGIN');
  try {
    // The row is written as the native engine writes it: started, one successful step, finished.
    await session.query(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, clock_timestamp())`,
      [id, migration.checksum, migration.name],
    );
    await session.exec(migration.script);
    await session.query(
      `UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1, finished_at = clock_timestamp() WHERE id = $1`,
      [id],
    );
    await session.exec('COMMIT');
  } catch (err) {
    await session.exec('ROLLBACK').catch(() => undefined);
    throw new MigrationError(
      `migration ${migration.name} failed and was rolled back, nothing of it was applied: ${describeDatabaseError(err, migration.script)}`,
      { cause: err },
    );
  }
}

/** A database error as a person needs it: message, SQLSTATE, detail, hint and the failing line. */
function describeDatabaseError(err: unknown, script: string): string {
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    message?: unknown;
    code?: unknown;
    detail?: unknown;
    hint?: unknown;
    position?: unknown;
  };
  const parts = [typeof e.message === 'string' ? e.message : String(err)];
  if (typeof e.code === 'string') parts.push(`(SQLSTATE ${e.code})`);
  const position = Number(e.position);
  if (Number.isInteger(position) && position > 0) {
    const before = script.slice(0, position - 1);
    const line = before.split('\n').length;
    parts.push(`at line ${line}: ${script.split('\n')[line - 1]?.trim() ?? ''}`);
  }
  if (typeof e.detail === 'string' && e.detail) parts.push(`DETAIL: ${e.detail}`);
  if (typeof e.hint === 'string' && e.hint) parts.push(`HINT: ${e.hint}`);
  return parts.join(' ');
}

function sqlState(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A runner over a `pg` pool: `withSession` checks out one client for the whole call. */
export function pgPoolRunner(pool: pg.Pool): SqlRunner {
  const sessionOf = (client: pg.Pool | pg.PoolClient): SqlSession => ({
    async query<R extends SqlRow = SqlRow>(sql: string, params: readonly unknown[] = []) {
      return (await client.query<R>(sql, [...params])).rows;
    },
    async exec(script: string) {
      // Without values, pg uses the simple query protocol, which accepts several statements.
      await client.query(script);
    },
  });
  return {
    ...sessionOf(pool),
    async withSession<T>(fn: (session: SqlSession) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let healthy = false;
      try {
        const result = await fn(sessionOf(client));
        healthy = true;
        return result;
      } finally {
        // After a failure the session may still hold a lock or an aborted transaction: discard it.
        client.release(!healthy);
      }
    },
  };
}

/**
 * A runner over an in-process PGlite. PGlite has exactly one session, so `withSession` is that
 * session; statements of other users of the same instance could interleave between ours, which is
 * why migrations must run before the instance is shared (openDatabase does so).
 */
export function pgliteRunner(db: PGlite): SqlRunner {
  const session: SqlSession = {
    async query<R extends SqlRow = SqlRow>(sql: string, params: readonly unknown[] = []) {
      return (await db.query<R>(sql, [...params])).rows;
    },
    async exec(script: string) {
      // Awaited, unlike pglite-prisma-adapter 0.7.2's executeScript, so a failing script fails.
      await db.exec(script);
    },
  };
  return { ...session, withSession: (fn) => fn(session) };
}
