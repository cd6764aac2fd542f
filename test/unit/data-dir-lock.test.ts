/**
 * The embedded database's lock file: one holder at a time, stale locks (a dead or reused PID, a
 * reboot) taken over at once, a live or unverifiable holder named in the error.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { StartupError } from '../../src/config.js';
import { LOCK_FILE, assertDataDirFree, lockDataDir, type DataDirLock } from '../../src/infra/data-dir-lock.js';

const dirs: string[] = [];
const locks: DataDirLock[] = [];
afterEach(async () => {
  await Promise.all(locks.splice(0).map((lock) => lock.release()));
});
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-lock-'));
  dirs.push(dir);
  return dir;
}

async function lock(dir: string): Promise<DataDirLock> {
  const held = await lockDataDir(dir);
  locks.push(held);
  return held;
}

async function failure(promise: Promise<unknown>): Promise<StartupError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(StartupError);
  expect((error as StartupError).variable).toBe('DATA_DIR');
  return error as StartupError;
}

/** A PID that certainly belonged to a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

function holder(fields: Record<string, unknown>): string {
  return JSON.stringify({
    pid: process.pid,
    host: os.hostname(),
    bootId: null,
    startTime: null,
    nonce: 'other',
    ...fields,
  });
}

describe('lockDataDir', () => {
  it('creates the directory, holds the lock until release, and refuses a second holder meanwhile', async () => {
    const dir = path.join(await tempDir(), 'nested', 'data');
    const held = await lock(dir);
    expect(JSON.parse(await readFile(path.join(dir, LOCK_FILE), 'utf8'))).toMatchObject({
      pid: process.pid,
      host: os.hostname(),
    });

    const error = await failure(lockDataDir(dir));
    expect(error.message).toContain(`DATA_DIR ${dir} is in use`);
    expect(error.message).toContain(`PID ${process.pid}`);

    await held.release();
    expect(existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    await lock(dir);
  });

  it('names a live holder in another process, with its PID', async () => {
    const dir = await tempDir();
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      await writeFile(path.join(dir, LOCK_FILE), holder({ pid: child.pid }));
      const error = await failure(lockDataDir(dir));
      expect(error.message).toContain(`PID ${child.pid}`);
      await expect(assertDataDirFree(dir)).rejects.toThrow(`PID ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
    }
  });

  // Start times and boot ids come from Linux's /proc (CI runs Debian).
  it.each([
    ['its process is gone (SIGKILL, crash)', async () => holder({ pid: await deadPid() })],
    ['its PID is ours: an earlier run in a restarted container', async () => holder({})],
    [
      'its PID now belongs to another program (start time differs)',
      async () => holder({ pid: process.ppid, startTime: '1' }),
    ],
    ['the machine rebooted since', async () => holder({ pid: process.ppid, bootId: 'an-earlier-boot' })],
  ])('takes over a stale lock: %s', async (_, content) => {
    const dir = await tempDir();
    await writeFile(path.join(dir, LOCK_FILE), await content());
    await expect(assertDataDirFree(dir)).resolves.toBeUndefined();
    const held = await lock(dir);
    expect(JSON.parse(await readFile(held.file, 'utf8'))).toMatchObject({ pid: process.pid });
  });

  it('does not take over a lock it cannot verify: another host, or no holder written', async () => {
    const dir = await tempDir();
    await writeFile(path.join(dir, LOCK_FILE), holder({ host: 'some-other-host', pid: 12345 }));
    expect((await failure(lockDataDir(dir))).message).toContain('on host some-other-host (PID 12345');
    await writeFile(path.join(dir, LOCK_FILE), '');
    expect((await failure(lockDataDir(dir))).message).toContain('names no holder');
  });

  it('release leaves a lock that is no longer its own', async () => {
    const dir = await tempDir();
    const held = await lock(dir);
    await writeFile(held.file, holder({ nonce: 'someone-else' }));
    await held.release();
    expect(existsSync(held.file)).toBe(true);
  });

  it('reports a DATA_DIR that cannot be created, naming it', async () => {
    const file = path.join(await tempDir(), 'a-file');
    await writeFile(file, '');
    const error = await failure(lockDataDir(path.join(file, 'data')));
    expect(error.message).toMatch(/DATA_DIR .*a-file\/data is not writable \(ENOTDIR\).*DATABASE_URL/);
  });
});
