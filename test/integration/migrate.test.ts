/**
 * applyMigrations against both databases it serves (an in-process PGlite and a real PostgreSQL
 * server), and the drift check that keeps prisma/migrations equal to prisma/schema.prisma.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR } from '../../src/infra/database.js';
import {
  applyMigrations,
  MigrationError,
  pgliteRunner,
  pgPoolRunner,
  type SqlRunner,
} from '../../src/infra/migrate.js';
import { freshDatabase } from '../support/backends.js';
import { ignoreForcedDrop } from '../support/postgres.js';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));

/** A freshly initialised PGlite data directory; restoring it is ~6x faster than initdb. */
let pgliteSnapshot: Blob | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
const tempDirs: string[] = [];

beforeAll(async () => {
  const db = await PGlite.create();
  pgliteSnapshot = await db.dumpDataDir('none');
  await db.close();
});

afterEach(async () => {
  // Last in, first out: a database is dropped after the pools on it have ended.
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

interface Target {
  name: 'pglite' | 'postgres';
  /** A runner over a fresh, empty database, closed after the test. */
  freshDatabase(): Promise<SqlRunner>;
}

/** An empty database on the tier's shared server, dropped after the test. */
async function freshPostgresUrl(): Promise<string> {
  const database = await freshDatabase({ migrated: false });
  cleanups.push(() => database.drop());
  return database.url;
}

function poolRunner(url: string): SqlRunner {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', ignoreForcedDrop);
  cleanups.push(() => pool.end());
  return pgPoolRunner(pool);
}

const targets: Target[] = [
  {
    name: 'pglite',
    async freshDatabase() {
      const db = await PGlite.create({ loadDataDir: pgliteSnapshot });
      cleanups.push(() => db.close());
      return pgliteRunner(db);
    },
  },
  {
    name: 'postgres',
    async freshDatabase() {
      return poolRunner(await freshPostgresUrl());
    },
  },
];

/** A migrations folder in Prisma's layout under a temp dir: `{ '<name>': '<sql>' }`. */
async function migrationsDir(migrations: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-migrations-'));
  tempDirs.push(dir);
  await writeFile(path.join(dir, 'migration_lock.toml'), 'provider = "postgresql"\n');
  for (const [name, sql] of Object.entries(migrations)) {
    await mkdir(path.join(dir, name));
    await writeFile(path.join(dir, name, 'migration.sql'), sql);
  }
  return dir;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

interface HistoryRow {
  id: string;
  checksum: string;
  migration_name: string;
  logs: string | null;
  started_at: Date;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  applied_steps_count: number;
}

const history = (runner: SqlRunner): Promise<HistoryRow[]> =>
  runner.query<HistoryRow & Record<string, unknown>>('SELECT * FROM _prisma_migrations ORDER BY migration_name');

const tableNames = async (runner: SqlRunner): Promise<string[]> =>
  (
    await runner.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY 1`,
    )
  ).map((r) => r.relname);

describe.each(targets)('applyMigrations on $name', (target) => {
  it("applies the repository's migrations to an empty database and records them as Prisma does", async () => {
    const runner = await target.freshDatabase();
    const names = (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(names.length).toBeGreaterThan(0);
    const logs: string[] = [];

    const result = await applyMigrations(runner, MIGRATIONS_DIR, (m) => logs.push(m));

    expect(result.applied).toEqual(names);
    expect(logs.join('\n')).toContain(names[0]);
    const rows = await history(runner);
    expect(rows.map((r) => r.migration_name)).toEqual(names);
    for (const row of rows) {
      const script = await readFile(path.join(MIGRATIONS_DIR, row.migration_name, 'migration.sql'), 'utf8');
      expect(row.checksum).toBe(sha256(script));
      expect(row.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(row.applied_steps_count).toBe(1);
      expect(row.logs).toBeNull();
      expect(row.rolled_back_at).toBeNull();
      expect(row.finished_at).toBeInstanceOf(Date);
      expect(row.finished_at!.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
    }
    // The schema's tables exist, next to Prisma's history table.
    expect(await tableNames(runner)).toEqual(
      expect.arrayContaining(['_prisma_migrations', 'User', 'Competition', 'Vote']),
    );
    // Exactly the columns and types of the table Prisma's engine creates.
    const columns = await runner.query(
      `SELECT column_name, data_type, character_maximum_length, is_nullable, column_default
         FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = '_prisma_migrations' ORDER BY ordinal_position`,
    );
    expect(columns).toEqual([
      {
        column_name: 'id',
        data_type: 'character varying',
        character_maximum_length: 36,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'checksum',
        data_type: 'character varying',
        character_maximum_length: 64,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'finished_at',
        data_type: 'timestamp with time zone',
        character_maximum_length: null,
        is_nullable: 'YES',
        column_default: null,
      },
      {
        column_name: 'migration_name',
        data_type: 'character varying',
        character_maximum_length: 255,
        is_nullable: 'NO',
        column_default: null,
      },
      {
        column_name: 'logs',
        data_type: 'text',
        character_maximum_length: null,
        is_nullable: 'YES',
        column_default: null,
      },
      {
        column_name: 'rolled_back_at',
        data_type: 'timestamp with time zone',
        character_maximum_length: null,
        is_nullable: 'YES',
        column_default: null,
      },
      {
        column_name: 'started_at',
        data_type: 'timestamp with time zone',
        character_maximum_length: null,
        is_nullable: 'NO',
        column_default: 'now()',
      },
      {
        column_name: 'applied_steps_count',
        data_type: 'integer',
        character_maximum_length: null,
        is_nullable: 'NO',
        column_default: '0',
      },
    ]);
  });

  it('applies nothing the second time, and only the new migration once one is added', async () => {
    const runner = await target.freshDatabase();
    const dir = await migrationsDir({ '20260101000000_a': 'CREATE TABLE a (id int);' });
    expect(await applyMigrations(runner, dir)).toEqual({ applied: ['20260101000000_a'] });
    const before = await history(runner);

    expect(await applyMigrations(runner, dir)).toEqual({ applied: [] });
    expect(await history(runner)).toEqual(before);

    await mkdir(path.join(dir, '20260102000000_b'));
    await writeFile(path.join(dir, '20260102000000_b', 'migration.sql'), 'CREATE TABLE b (id int);');
    expect(await applyMigrations(runner, dir)).toEqual({ applied: ['20260102000000_b'] });
    expect((await history(runner)).map((r) => r.migration_name)).toEqual(['20260101000000_a', '20260102000000_b']);
  });

  it('applies migrations in folder-name order, whatever order they were written in', async () => {
    const runner = await target.freshDatabase();
    const dir = await migrationsDir({
      '20260103000000_c': 'ALTER TABLE a ADD COLUMN c int;',
      '20260101000000_a': 'CREATE TABLE a (id int);',
      '20260102000000_b': 'ALTER TABLE a ADD COLUMN b int;',
    });
    expect((await applyMigrations(runner, dir)).applied).toEqual([
      '20260101000000_a',
      '20260102000000_b',
      '20260103000000_c',
    ]);
  });

  it('sends a script whole, so $$ bodies survive', async () => {
    const runner = await target.freshDatabase();
    const dir = await migrationsDir({
      '20260101000000_fn': `CREATE FUNCTION add_one(i int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  RETURN i + 1; -- a semicolon inside the body
END;
$$;
DO $$ BEGIN CREATE TABLE made_by_do (id int); END $$;`,
    });
    await applyMigrations(runner, dir);
    expect(await runner.query('SELECT add_one(41) AS v')).toEqual([{ v: 42 }]);
    expect(await tableNames(runner)).toContain('made_by_do');
  });

  it('rejects a migration edited after it was applied, and applies nothing after it', async () => {
    const runner = await target.freshDatabase();
    const dir = await migrationsDir({ '20260101000000_a': 'CREATE TABLE a (id int);\n' });
    await applyMigrations(runner, dir);
    await writeFile(path.join(dir, '20260101000000_a', 'migration.sql'), 'CREATE TABLE a (id bigint);\n');
    await mkdir(path.join(dir, '20260102000000_b'));
    await writeFile(path.join(dir, '20260102000000_b', 'migration.sql'), 'CREATE TABLE b (id int);');

    const failure = applyMigrations(runner, dir);
    await expect(failure).rejects.toBeInstanceOf(MigrationError);
    await expect(failure).rejects.toThrow(/20260101000000_a was modified after it was applied/);
    expect(await tableNames(runner)).not.toContain('b');
  });

  it('accepts a checksum that differs only by line endings, as Prisma does', async () => {
    const runner = await target.freshDatabase();
    const dir = await migrationsDir({ '20260101000000_a': 'CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n' });
    await applyMigrations(runner, dir);
    await writeFile(
      path.join(dir, '20260101000000_a', 'migration.sql'),
      'CREATE TABLE a (id int);\r\nCREATE TABLE b (id int);\r\n',
    );
    expect(await applyMigrations(runner, dir)).toEqual({ applied: [] });
  });

  it('rolls a failing migration back whole and reports its name and the database error', async () => {
    const runner = await target.freshDatabase();
    const dir = await migrationsDir({
      '20260101000000_ok': 'CREATE TABLE a (id int);',
      '20260102000000_broken':
        'CREATE TABLE partial (id int);\nINSERT INTO partial VALUES (1);\nSELECT 1 / 0;\nCREATE TABLE never (id int);',
      '20260103000000_later': 'CREATE TABLE later (id int);',
    });

    const failure = applyMigrations(runner, dir);
    await expect(failure).rejects.toBeInstanceOf(MigrationError);
    await expect(failure).rejects.toThrow(
      /migration 20260102000000_broken failed and was rolled back.*division by zero.*22012/s,
    );

    // The migration before it stays applied; nothing of the broken one or after it exists.
    expect(await tableNames(runner)).toEqual(['_prisma_migrations', 'a']);
    const rows = await history(runner);
    expect(rows.map((r) => [r.migration_name, r.finished_at !== null])).toEqual([['20260101000000_ok', true]]);

    // Once fixed, the next start applies it (and what follows) without any manual step.
    await writeFile(path.join(dir, '20260102000000_broken', 'migration.sql'), 'CREATE TABLE partial (id int);');
    expect((await applyMigrations(runner, dir)).applied).toEqual(['20260102000000_broken', '20260103000000_later']);
  });

  it('refuses to go on after a failed migration recorded by Prisma itself', async () => {
    const runner = await target.freshDatabase();
    const dir = await migrationsDir({
      '20260101000000_a': 'CREATE TABLE a (id int);',
      '20260102000000_b': 'CREATE TABLE b (id int);',
    });
    await applyMigrations(runner, dir);
    // What `prisma migrate deploy` leaves when a migration fails: started, not finished, logs.
    await runner.query(
      `INSERT INTO _prisma_migrations (id, checksum, migration_name, logs, started_at) VALUES ($1, $2, $3, $4, now())`,
      ['00000000-0000-4000-8000-000000000000', sha256('x'), '20260103000000_c', 'ERROR: relation "x" does not exist'],
    );
    await mkdir(path.join(dir, '20260103000000_c'));
    await writeFile(path.join(dir, '20260103000000_c', 'migration.sql'), 'CREATE TABLE c (id int);');

    const failure = applyMigrations(runner, dir);
    await expect(failure).rejects.toBeInstanceOf(MigrationError);
    await expect(failure).rejects.toThrow(
      /failed migrations.*`20260103000000_c` migration started at .* failed with the following logs:\nERROR: relation "x" does not exist/s,
    );
    expect(await tableNames(runner)).not.toContain('c');

    // Marked rolled back (`prisma migrate resolve --rolled-back`), it is applied again.
    await runner.query(
      `UPDATE _prisma_migrations SET rolled_back_at = now() WHERE migration_name = '20260103000000_c'`,
    );
    expect(await applyMigrations(runner, dir)).toEqual({ applied: ['20260103000000_c'] });
  });

  it('refuses a database whose schema has tables but no migration history', async () => {
    const runner = await target.freshDatabase();
    await runner.exec('CREATE TABLE somebody_elses (id int);');
    const dir = await migrationsDir({ '20260101000000_a': 'CREATE TABLE a (id int);' });
    await expect(applyMigrations(runner, dir)).rejects.toThrow(/schema is not empty \(somebody_elses\)/);
    expect(await tableNames(runner)).toEqual(['somebody_elses']);
  });

  it('refuses a migrations folder that cannot be read, before touching the database', async () => {
    const runner = await target.freshDatabase();
    const missing = path.join(os.tmpdir(), 'ovation-no-such-migrations-dir');
    await expect(applyMigrations(runner, missing)).rejects.toThrow(/cannot read the migrations folder/);
    const dir = await migrationsDir({});
    await mkdir(path.join(dir, '20260101000000_empty'));
    await expect(applyMigrations(runner, dir)).rejects.toThrow(/20260101000000_empty has no readable migration.sql/);
    await writeFile(path.join(dir, 'migration_lock.toml'), 'provider = "sqlite"\n');
    await expect(applyMigrations(runner, dir)).rejects.toThrow(/provider "sqlite"/);
    expect(await tableNames(runner)).toEqual([]);
  });
});

describe('applyMigrations on one PostgreSQL from several processes', () => {
  it('applies each migration exactly once when two start at the same time', async () => {
    const url = await freshPostgresUrl();
    // The first migration is slow, so the second runner surely arrives while the first holds the lock.
    const dir = await migrationsDir({
      '20260101000000_slow': 'SELECT pg_sleep(0.5);\nCREATE TABLE a (id int);',
      '20260102000000_b': 'CREATE TABLE b (id int);',
    });
    const [one, two] = await Promise.all([
      applyMigrations(poolRunner(url), dir),
      applyMigrations(poolRunner(url), dir),
    ]);

    expect([...one.applied, ...two.applied].sort()).toEqual(['20260101000000_slow', '20260102000000_b']);
    // One of them did everything; the other found it done.
    expect([one.applied.length, two.applied.length].sort()).toEqual([0, 2]);
    const rows = await history(poolRunner(url));
    expect(rows.map((r) => r.migration_name)).toEqual(['20260101000000_slow', '20260102000000_b']);
  });

  it('gives up with a clear error when another process holds the migration lock too long', async () => {
    const url = await freshPostgresUrl();
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    cleanups.push(() => holder.end());
    await holder.query('SELECT pg_advisory_lock(72707369)'); // the key `prisma migrate` uses
    const dir = await migrationsDir({ '20260101000000_a': 'CREATE TABLE a (id int);' });

    const started = Date.now();
    await expect(applyMigrations(poolRunner(url), dir, undefined, { lockTimeoutMs: 300 })).rejects.toThrow(
      /another process has been applying migrations for more than 300 ms/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);

    await holder.query('SELECT pg_advisory_unlock(72707369)');
    expect((await applyMigrations(poolRunner(url), dir)).applied).toEqual(['20260101000000_a']);
  });
});

/** Runs scripts/migration-create.ts with tsx; resolves with its exit code and output. */
function migrationCreate(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      path.join(projectRoot, 'node_modules/.bin/tsx'),
      ['scripts/migration-create.ts', ...args],
      { cwd: projectRoot, timeout: 120_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('migration drift check (npm run db:migrate:create -- --check)', () => {
  it(
    'passes on the repository: prisma/migrations reaches prisma/schema.prisma exactly',
    { timeout: 120_000 },
    async () => {
      const result = await migrationCreate(['--check']);
      expect(result.stderr).not.toMatch(/Error/);
      expect(result.stdout).toContain('is in sync with');
      expect(result.code).toBe(0);
    },
  );

  it('fails with the missing SQL when the migrations lag the schema', { timeout: 120_000 }, async () => {
    const empty = await migrationsDir({});
    const result = await migrationCreate(['--check', '--migrations', empty]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('CREATE TABLE "User"');
    expect(result.stdout).toContain('does not reach');
  });
});
