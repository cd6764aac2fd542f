/**
 * The embedded database in its own thread (src/infra/pglite-thread.ts, pglite-worker.ts): the
 * serving loop stays free while PGlite works, nothing outside the process can reach the database,
 * one session shared by connections one after another with nothing leaking between them, one
 * process per DATA_DIR, and a thread that dies is reported once, in one line.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { fatalLine, openDatabase } from '../../src/infra/database.js';
import { startPGliteThread, type PGliteThread } from '../../src/infra/pglite-thread.js';
import { startTestApp, type TestApp } from '../support/app.js';
import type {} from '../support/provided.js'; // inject()'s keys

const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-pglite-'));
  dirs.push(dir);
  return dir;
}

// One cluster for the file, copied for each test (creating one takes seconds): the tier's migrated
// PGlite directory (test/support/shared-servers.ts), which also spares openDatabase's migrations;
// one of our own where the tier has none. Creating a cluster is the subject of 'creating the data
// directory' below.
let template: string;
beforeAll(async () => {
  const shared = inject('pgliteTemplateDir');
  if (shared) {
    template = shared;
    return;
  }
  template = path.join(await tempDir(), 'pglite');
  await (await startPGliteThread({ dir: template, onCrash: () => undefined })).close();
});

/** A fresh copy of the template cluster: a PGlite data directory, or a DATA_DIR holding one. */
async function freshCluster(): Promise<string> {
  const dir = path.join(await tempDir(), 'pglite');
  await cp(template, dir, { recursive: true });
  return dir;
}

/** A PGlite thread on a fresh data directory, closed after the test; crashes are collected. */
async function thread(dir?: string): Promise<{ thread: PGliteThread; crashes: Error[]; dir: string }> {
  const crashes: Error[] = [];
  const dataDir = dir ?? (await freshCluster());
  const started = await startPGliteThread({ dir: dataDir, onCrash: (error) => crashes.push(error) });
  cleanups.push(() => started.close());
  return { thread: started, crashes, dir: dataDir };
}

async function client(t: PGliteThread): Promise<pg.Client> {
  const c = new pg.Client({ stream: t.connect, user: 'postgres', database: 'postgres' });
  c.on('error', () => undefined); // an ended session surfaces on the query instead
  await c.connect();
  cleanups.push(() => c.end());
  return c;
}

/** Runs an ES module script through tsx in a child process of the repository; killed after 60 s. */
async function runScript(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(killer);
  return { code, stdout, stderr };
}

/** Inodes of the listening sockets (TCP, TCP6, unix) this process holds. Linux only. */
function listeningSockets(): Set<string> {
  const mine = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (match) mine.add(match[1]!);
    } catch {
      // closed meanwhile
    }
  }
  const listening = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    for (const line of readFileSync(`/proc/net/${table}`, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[3] === '0A' && mine.has(cols[9]!)) listening.add(`${table}:${cols[9]}`); // 0A = LISTEN
    }
  }
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    // Flags 00010000 = __SO_ACCEPTCON: a listening socket.
    if (cols[3] === '00010000' && mine.has(cols[6]!)) listening.add(`unix:${cols[6]}:${cols[7] ?? ''}`);
  }
  return listening;
}

describe('the serving loop while the embedded database works', () => {
  let app: TestApp | undefined;
  afterEach(async () => {
    await app?.stop();
    app = undefined;
  });

  it('answers /health quickly while a 1.5 s statement runs in PGlite', async () => {
    app = await startTestApp();
    const { url } = app;
    const delay = monitorEventLoopDelay({ resolution: 10 });
    const probes: number[] = [];
    let running = true;
    const started = performance.now();
    // pg_sleep holds PGlite's thread the way any long statement does: synchronously, to its end.
    const statement = app.app.database.prisma.$queryRaw`SELECT pg_sleep(1.5)::text`.finally(() => (running = false));
    delay.enable();
    while (running) {
      const sent = performance.now();
      const response = await fetch(`${url}/health`);
      await response.arrayBuffer();
      expect(response.status).toBe(200);
      if (running) probes.push(performance.now() - sent);
    }
    await statement;
    delay.disable();
    const statementMs = performance.now() - started;

    expect(statementMs).toBeGreaterThanOrEqual(1_400);
    // In the serving thread, the statement would hold every probe until it ended (~1.5 s).
    expect(probes.length).toBeGreaterThanOrEqual(5);
    expect(Math.max(...probes)).toBeLessThan(500);
    expect(delay.max / 1e6).toBeLessThan(500);
  });

  it('takes a short answer without waiting for a turn of the event loop', async () => {
    // Each answer left to the loop waits for the turn in progress (a fan-out to thousands of
    // sockets under load) while PGlite's one session stays held: a transaction of a few statements
    // would hold it for that many turns.
    const { thread: t } = await thread();
    const c = await client(t);
    const statements = 20;
    const round = async (): Promise<number> => {
      let leftToTheLoop = 0;
      for (let i = 0; i < statements; i += 1) {
        let turned = false;
        setImmediate(() => (turned = true));
        expect((await c.query<{ i: number }>('SELECT $1::int AS i', [i])).rows).toEqual([{ i }]);
        if (turned) leftToTheLoop += 1;
      }
      return leftToTheLoop;
    };
    // Taken by the loop, every answer would come a turn later: 20 of 20 in every round. On a busy
    // machine (CI runs three files at a time beside a 1,000-client storm) the database thread is
    // not always scheduled within the bounded wait, so up to five rounds, one of which must show it.
    const rounds: number[] = [];
    while (rounds.length < 5 && !rounds.some((left) => left < statements / 2)) rounds.push(await round());
    expect(Math.min(...rounds), `answers left to the loop per round: ${rounds.join(', ')}`).toBeLessThan(
      statements / 2,
    );
  });
});

describe('reaching the embedded database', () => {
  it('opens no socket: nothing listens, in the process or in DATA_DIR, while it serves', async () => {
    const before = listeningSockets();
    const dataDir = path.dirname(await freshCluster());
    const db = await openDatabase({ dataDir });
    cleanups.push(() => db.close());
    await db.ping();

    expect(listeningSockets()).toEqual(before);
    const files = await readdir(dataDir, { recursive: true, withFileTypes: true });
    expect(files.filter((f) => f.isSocket()).map((f) => path.join(f.parentPath, f.name))).toEqual([]);
  });

  it('refuses a second process on the same DATA_DIR while the first one serves', async () => {
    const dataDir = path.dirname(await freshCluster());
    const db = await openDatabase({ dataDir });
    cleanups.push(() => db.close());

    const script = `
      const { openDatabase } = await import(${JSON.stringify(path.join(ROOT, 'src/infra/database.ts'))});
      try { await openDatabase({ dataDir: ${JSON.stringify(dataDir)} }); console.log('opened'); process.exit(0); }
      catch (error) { console.error(error.message); process.exit(3); }`;
    const { code, stdout, stderr } = await runScript(script);

    expect({ code, stdout }).toEqual({ code: 3, stdout: '' });
    expect(stderr.trim()).toBe(
      `DATA_DIR ${dataDir} is in use by another Ovation process (PID ${process.pid}): stop it, or give this server another DATA_DIR (two servers on one embedded database lose writes)`,
    );
    await expect(db.ping()).resolves.toBeUndefined(); // the first one is untouched
  });
});

describe('one session, connections one after another', () => {
  it('connects a second client only once the first has ended, and it inherits nothing', async () => {
    const { thread: t } = await thread();
    let firstStream: Duplex | undefined;
    const first = new pg.Client({ stream: () => (firstStream = t.connect()), user: 'postgres', database: 'postgres' });
    first.on('error', () => undefined); // it is cut off below
    await first.connect();
    await first.query('CREATE TABLE notes (id int PRIMARY KEY)');
    await first.query('BEGIN');
    await first.query('INSERT INTO notes VALUES (1)');
    await first.query(`SELECT set_config('application_name', 'first', false)`);
    await first.query({ name: 'by_id', text: 'SELECT id FROM notes WHERE id = $1', values: [1] });
    await first.query('SELECT pg_advisory_lock(42)');

    const order: string[] = [];
    const second = new pg.Client({ stream: t.connect, user: 'postgres', database: 'postgres' });
    const connecting = second.connect().then(() => order.push('second connected'));
    cleanups.push(() => second.end());
    // Round trips on the first connection while the second one asks: it is not let in meanwhile.
    for (let i = 0; i < 5; i++) await first.query('SELECT 1');

    // The first one goes away in the middle of its transaction.
    order.push('first gone');
    firstStream!.destroy();
    await connecting;
    expect(order).toEqual(['first gone', 'second connected']);

    const state = await second.query<{ notes: string; app: string; statements: string; locks: string }>(`
      SELECT (SELECT count(*) FROM notes) AS notes, current_setting('application_name') AS app,
             (SELECT count(*) FROM pg_prepared_statements) AS statements,
             (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory') AS locks`);
    expect(state.rows[0]).toMatchObject({ notes: '0', app: '', statements: '0', locks: '0' });
    // The statement name is free again.
    await second.query({ name: 'by_id', text: 'SELECT 1 AS one WHERE $1::int = 1', values: [1] });
  });

  it('keeps the session usable after errors, a Terminate, and large results', async () => {
    const { thread: t } = await thread();
    const c = await client(t);
    await expect(c.query('SELEC 1')).rejects.toThrow(/syntax error/);
    await expect(c.query('SELECT $1::int AS n', ['not a number'])).rejects.toThrow(/invalid input syntax/);
    const big = await c.query<{ s: string }>(`SELECT repeat('x', 4000000) AS s`);
    expect(big.rows[0]!.s.length).toBe(4_000_000);
    const many = await c.query<{ n: number }>('SELECT n FROM generate_series(1, 20000) n');
    expect(many.rows.at(-1)).toEqual({ n: 20000 });
    await c.end(); // Terminate: ends this connection, not the database

    const next = await client(t);
    expect((await next.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('keeps data across a close and a new thread on the same directory', async () => {
    const { thread: t, dir } = await thread();
    const c = await client(t);
    await c.query('CREATE TABLE kept (v text)');
    await c.query(`INSERT INTO kept VALUES ('still here')`);
    await c.end();
    await t.close();
    await t.close(); // idempotent

    const { thread: again } = await thread(dir);
    expect((await (await client(again)).query('SELECT v FROM kept')).rows).toEqual([{ v: 'still here' }]);
  });
});

describe('creating the data directory', () => {
  it('creates the cluster beside the target and renames it into place, clearing an interrupted attempt', async () => {
    const parent = await tempDir();
    const dir = path.join(parent, 'pglite');
    await mkdir(dir); // an empty directory: a first start that stopped before creating anything
    await mkdir(`${dir}.creating-deadbeef`); // an attempt that was interrupted
    await writeFile(`${dir}.creating-deadbeef/PG_VERSION`, '18\n');
    const logs: string[] = [];
    const crashes: Error[] = [];
    const t = await startPGliteThread({ dir, onCrash: (error) => crashes.push(error), log: (m) => logs.push(m) });
    cleanups.push(() => t.close());

    expect(existsSync(path.join(dir, 'PG_VERSION'))).toBe(true);
    expect((await readdir(parent)).sort()).toEqual(['pglite']);
    expect(logs.some((m) => m.startsWith(`database: created the embedded database in ${dir}`))).toBe(true);
  });

  it('refuses a non-empty directory that holds no cluster, naming DATA_DIR', async () => {
    const dir = path.join(await tempDir(), 'pglite');
    await mkdir(dir);
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    await expect(startPGliteThread({ dir, onCrash: () => undefined })).rejects.toMatchObject({
      variable: 'DATA_DIR',
      message: `${dir} is not empty but holds no database (no PG_VERSION): move it aside, or set DATA_DIR to another directory`,
    });
    expect(await readdir(dir)).toEqual(['notes.txt']);
  });
});

describe('a database thread that dies', () => {
  it('is reported once with its error, and later connections fail at once', async () => {
    const { thread: t, crashes } = await thread();
    const c = await client(t);
    // An internal fault of the thread (here: a request it does not know) ends it.
    t.worker.postMessage({ type: 'bogus' });

    await expect.poll(() => crashes.length).toBe(1);
    expect(crashes[0]!.message).toContain('pglite worker: unknown request {"type":"bogus"}');
    await expect(c.query('SELECT 1')).rejects.toThrow();
    const late = new pg.Client({ stream: t.connect });
    await expect(late.connect()).rejects.toThrow('the embedded database is not running');
    await expect(t.close()).resolves.toBeUndefined();
    expect(crashes).toHaveLength(1);
  });

  it('fails the statement in flight instead of leaving it hanging', async () => {
    const { thread: t, crashes } = await thread();
    const c = await client(t);
    const running = c.query('SELECT pg_sleep(5)').then(
      () => 'answered',
      (error: Error) => error.message,
    );
    await new Promise((resolve) => setImmediate(resolve)); // sent
    await t.worker.terminate();

    expect(await running).toMatch(/Connection terminated/);
    expect(crashes.map((e) => e.message)).toEqual(['its thread exited with code 1']);
  });

  it('by default ends the process with one line on stderr', async () => {
    const dir = await freshCluster();
    const script = `
      const { startPGliteThread } = await import(${JSON.stringify(path.join(ROOT, 'src/infra/pglite-thread.ts'))});
      const { exitOnDatabaseLoss } = await import(${JSON.stringify(path.join(ROOT, 'src/infra/database.ts'))});
      const t = await startPGliteThread({ dir: ${JSON.stringify(dir)}, onCrash: exitOnDatabaseLoss });
      setInterval(() => undefined, 1000); // a server would be listening
      await t.worker.terminate();`;
    const { code, stderr } = await runScript(script);

    expect(code).toBe(1);
    expect(stderr).toBe('Ovation: the embedded database stopped (its thread exited with code 1); exiting\n');
    expect(fatalLine(new Error('RuntimeError: unreachable\n    at wasm://x'))).toBe(
      'Ovation: the embedded database stopped (RuntimeError: unreachable at wasm://x); exiting',
    );
  });
});
