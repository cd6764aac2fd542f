/**
 * openDatabase on both kinds (embedded PGlite in a temp dir, a real PostgreSQL), and the
 * PostgreSQL test harness itself.
 */
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { MIGRATIONS_DIR, openDatabase, type Database } from '../../src/infra/database.js';
import { freshDatabase, type TestDatabase } from '../support/backends.js';
import { createTestDatabase, dropTestDatabase, startPostgres } from '../support/postgres.js';

const opened: Database[] = [];
const tempDirs: string[] = [];
const databases: TestDatabase[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((db) => db.close()));
  await Promise.all([
    ...tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })),
    ...databases.splice(0).map((d) => d.drop()),
  ]);
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-data-'));
  tempDirs.push(dir);
  return dir;
}

async function open(opts: Parameters<typeof openDatabase>[0]): Promise<Database> {
  const db = await openDatabase(opts);
  opened.push(db);
  return db;
}

const repositoryMigrations = async (): Promise<string[]> =>
  (await readdir(MIGRATIONS_DIR, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();

interface Kind {
  kind: Database['kind'];
  /**
   * Options for a fresh database of this kind: empty (opening it applies every migration), or with
   * `migrated`, a copy of the tier's migrated one (for tests about what a database does once open).
   */
  options(opts?: { migrated?: boolean }): Promise<Parameters<typeof openDatabase>[0]>;
}

const kinds: Kind[] = [
  {
    kind: 'pglite',
    options: async ({ migrated = false } = {}) => {
      const dataDir = await tempDir();
      if (migrated) await cp(inject('pgliteTemplateDir'), path.join(dataDir, 'pglite'), { recursive: true });
      return { dataDir };
    },
  },
  {
    kind: 'postgres',
    options: async ({ migrated = false } = {}) => {
      const database = await freshDatabase({ migrated });
      databases.push(database);
      return { databaseUrl: database.url, dataDir: await tempDir(), poolSize: 5 };
    },
  },
];

describe.each(kinds)('openDatabase ($kind)', ({ kind, options }) => {
  // Both create a PGlite cluster from nothing (initdb in a child process: tens of seconds on a busy machine).
  it('opens a migrated database, answers ping, and closes', { timeout: 90_000 }, async () => {
    const logs: string[] = [];
    const db = await open({ ...(await options()), log: (m) => logs.push(m) });

    expect(db.kind).toBe(kind);
    await expect(db.ping()).resolves.toBeUndefined();
    const rows = await db.prisma.$queryRaw<{ migration_name: string }[]>`
      SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL ORDER BY migration_name`;
    expect(rows.map((r) => r.migration_name)).toEqual(await repositoryMigrations());
    expect(logs.some((m) => m.includes('applied'))).toBe(true);

    // The generated client works against the migrated schema: a nested write and a read back.
    const user = await db.prisma.user.create({ data: { id: 'u1', name: 'Ada' } });
    const competition = await db.prisma.competition.create({
      data: {
        title: 'Demo day',
        votingMethod: 'SIMPLE',
        submissions: { create: [{ title: 'A', founderId: user.id }] },
      },
      include: { submissions: true },
    });
    expect(competition.submissions.map((s) => s.title)).toEqual(['A']);

    await db.close();
    await db.close(); // idempotent
    await expect(db.ping()).rejects.toThrow();
  });

  it('runs 50 concurrent interactive transactions without losing an increment', async () => {
    const db = await open(await options({ migrated: true }));
    await db.prisma.topicSequence.create({ data: { topic: 'tally:c1' } });

    const seen = await Promise.all(
      Array.from({ length: 50 }, () =>
        db.prisma.$transaction(async (tx) => {
          const before = await tx.topicSequence.findUniqueOrThrow({ where: { topic: 'tally:c1' } });
          const after = await tx.topicSequence.update({
            where: { topic: 'tally:c1' },
            data: { seq: { increment: 1 } },
          });
          return { before: before.seq, after: after.seq };
        }),
      ),
    );

    expect((await db.prisma.topicSequence.findUniqueOrThrow({ where: { topic: 'tally:c1' } })).seq).toBe(50);
    expect(new Set(seen.map((s) => s.after)).size).toBe(50);
    if (kind === 'pglite') {
      // One session: the transactions ran one after another, each seeing the previous one's write.
      expect(seen.every((s) => s.after === s.before + 1)).toBe(true);
    }
  });

  it('rolls back an interactive transaction that throws, and keeps serving afterwards', async () => {
    const db = await open(await options({ migrated: true }));
    await expect(
      db.prisma.$transaction(async (tx) => {
        await tx.topicSequence.create({ data: { topic: 'rolled-back' } });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await db.prisma.topicSequence.count({ where: { topic: 'rolled-back' } })).toBe(0);
    await expect(db.ping()).resolves.toBeUndefined();
  });
});

describe('openDatabase (pglite) across restarts', () => {
  it('keeps data under <dataDir>/pglite and applies nothing on the second start', { timeout: 90_000 }, async () => {
    const dataDir = path.join(await tempDir(), 'nested', 'data'); // created on demand
    const first = await open({ dataDir });
    await first.prisma.user.create({ data: { id: 'u1', name: 'Ada' } });
    await first.close();
    expect(existsSync(path.join(dataDir, 'pglite', 'PG_VERSION'))).toBe(true);

    const logs: string[] = [];
    const second = await open({ dataDir, log: (m) => logs.push(m) });
    expect(await second.prisma.user.findUnique({ where: { id: 'u1' } })).toMatchObject({ name: 'Ada' });
    expect(logs).toContain(`migrations: database is up to date (${(await repositoryMigrations()).length} migrations)`);
  });
});

describe('startPostgres / createTestDatabase', () => {
  it('runs a throwaway server with the test settings, isolated databases, and stops it completely', async () => {
    const server = await startPostgres();
    let stopped = false;
    try {
      expect(server.url).toBe(`postgresql://postgres@127.0.0.1:${server.port}/postgres`);
      const [a, b] = await Promise.all([createTestDatabase(server.url), createTestDatabase(server.url, 'named_db')]);
      expect(new URL(b).pathname).toBe('/named_db');

      const client = new pg.Client({ connectionString: a });
      await client.connect();
      try {
        const { rows } = await client.query<Record<string, string>>(
          `SELECT current_database() AS db, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc,
                  current_setting('full_page_writes') AS fpw, current_setting('max_connections') AS mc`,
        );
        expect(rows[0]).toEqual({ db: new URL(a).pathname.slice(1), fsync: 'off', sc: 'off', fpw: 'off', mc: '200' });
        await client.query('CREATE TABLE only_in_a (id int)');
      } finally {
        await client.end();
      }
      const other = new pg.Client({ connectionString: b });
      await other.connect();
      try {
        expect((await other.query(`SELECT to_regclass('only_in_a') AS t`)).rows[0]).toEqual({ t: null });
      } finally {
        await other.end();
      }

      // A copy of `a` (no one connected to it now) has its table; dropping it disconnects its users.
      const copy = await createTestDatabase(server.url, { template: new URL(a).pathname.slice(1) });
      const onCopy = new pg.Client({ connectionString: copy });
      onCopy.on('error', () => undefined); // the drop below terminates it
      await onCopy.connect();
      expect((await onCopy.query(`SELECT to_regclass('only_in_a') AS t`)).rows[0]).toEqual({ t: 'only_in_a' });
      await dropTestDatabase(copy);
      await expect(onCopy.query('SELECT 1')).rejects.toThrow();
      await onCopy.end().catch(() => undefined);
      const admin = new pg.Client({ connectionString: server.url });
      await admin.connect();
      try {
        const { rows } = await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`,
          [new URL(copy).pathname.slice(1)],
        );
        expect(rows[0]).toEqual({ n: 0 });
      } finally {
        await admin.end();
      }
      await expect(createTestDatabase(server.url, { template: 'no such db' })).rejects.toThrow(/invalid database name/);

      await server.stop();
      stopped = true;
      expect(existsSync(server.dir)).toBe(false);
      expect(() => process.kill(server.pid, 0)).toThrow();
      await expect(connectable(server.port)).resolves.toBe(false);
    } finally {
      if (!stopped) await server.stop();
    }
  });

  it('reports a server that cannot start, with its output', async () => {
    await expect(startPostgres({ settings: { max_connections: 'lots' }, portAttempts: 1 })).rejects.toThrow(
      /postgres exited during start-up[\s\S]*--- postgres output ---[\s\S]*max_connections/,
    );
  });
});

function connectable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
