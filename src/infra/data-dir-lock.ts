/**
 * One process per embedded database. PGlite has no lock of its own: a second process on the same
 * DATA_DIR opens the same files, accepts writes, and one of them loses its writes (or aborts) at
 * the next restart. The lock is a file, `<dataDir>/pglite.lock`, holding the holder's PID, host,
 * boot id and (on Linux) process start time, created with O_EXCL.
 *
 * A lock whose holder is gone (SIGKILL, a crash, a reboot) is stale and taken over at once: the
 * holder is checked with kill(pid, 0), and on Linux its start time in /proc is compared, so a PID
 * reused by another program does not hold the lock. A holder on another host (a container that
 * shares the volume) cannot be checked: its lock holds until it is released or deleted by hand.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { StartupError } from '../config.js';

export const LOCK_FILE = 'pglite.lock';

export interface DataDirLock {
  readonly file: string;
  /** Removes the lock file if it is still ours. Safe to call twice. */
  release(): Promise<void>;
}

interface Holder {
  pid: number;
  host: string;
  bootId: string | null;
  startTime: string | null;
  nonce: string;
}

/** Lock files held by this process: PID checks cannot tell this process from itself. */
const heldHere = new Set<string>();

function linuxBootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot (Linux), or null. */
function linuxStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    return typeof value.pid === 'number' && typeof value.nonce === 'string' && typeof value.host === 'string'
      ? {
          pid: value.pid,
          host: value.host,
          bootId: value.bootId ?? null,
          startTime: value.startTime ?? null,
          nonce: value.nonce,
        }
      : undefined;
  } catch {
    return undefined;
  }
}

/** false only when the holder is certainly gone. */
function holderAlive(holder: Holder): boolean {
  if (holder.host !== os.hostname()) return true; // another host's processes cannot be checked
  const bootId = linuxBootId();
  if (holder.bootId && bootId && holder.bootId !== bootId) return false; // rebooted since
  if (holder.pid === process.pid) return false; // an earlier run with our PID (a container restart)
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: it exists and belongs to another user.
  }
  const startTime = linuxStartTime(holder.pid);
  return !(holder.startTime && startTime && holder.startTime !== startTime); // the PID was reused
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function inUse(dataDir: string, file: string, holder: Holder | undefined): StartupError {
  const who =
    holder === undefined
      ? `another process (${file} names no holder; delete it if no Ovation runs here)`
      : holder.host === os.hostname()
        ? `another Ovation process (PID ${holder.pid})`
        : `an Ovation process on host ${holder.host} (PID ${holder.pid}; delete ${file} if it is gone)`;
  return new StartupError(
    'DATA_DIR',
    `DATA_DIR ${dataDir} is in use by ${who}: stop it, or give this server another DATA_DIR (two servers on one embedded database lose writes)`,
  );
}

function notWritable(dataDir: string, error: NodeJS.ErrnoException): StartupError {
  return new StartupError(
    'DATA_DIR',
    `DATA_DIR ${dataDir} is not writable (${error.code ?? error.message}): set DATA_DIR to a writable directory, or DATABASE_URL to use PostgreSQL`,
  );
}

/**
 * Throws the StartupError lockDataDir would throw for a live holder, without taking the lock:
 * main.ts asks before it loads the app, which takes seconds.
 */
export async function assertDataDirFree(dataDir: string): Promise<void> {
  const file = path.join(dataDir, LOCK_FILE);
  const text = await readText(file).catch(() => undefined);
  if (text === undefined) return;
  const holder = parseHolder(text);
  if (holder === undefined || holderAlive(holder)) throw inUse(dataDir, file, holder);
}

/**
 * Creates `dataDir` if needed and takes its lock, or throws a StartupError naming DATA_DIR (in use,
 * with the holder's PID; or not writable).
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const file = path.join(dataDir, LOCK_FILE);
  if (heldHere.has(file))
    throw inUse(dataDir, file, { pid: process.pid, host: os.hostname(), bootId: null, startTime: null, nonce: '' });
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (error) {
    throw notWritable(dataDir, error as NodeJS.ErrnoException);
  }
  const mine: Holder = {
    pid: process.pid,
    host: os.hostname(),
    bootId: linuxBootId(),
    startTime: linuxStartTime(process.pid),
    nonce: randomUUID(),
  };
  const content = JSON.stringify(mine) + '\n';

  // Each pass either takes the lock, fails, or removes a stale lock; a lock that a racing process
  // takes between two passes is found alive on the next one.
  for (let pass = 0; pass < 5; pass++) {
    try {
      // One small write right after O_EXCL: a reader may see the file empty for that instant,
      // and then reports it as held, which it is.
      await writeFile(file, content, { flag: 'wx', mode: 0o644 });
      heldHere.add(file);
      return { file, release: releaser(file, mine.nonce) };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw notWritable(dataDir, error as NodeJS.ErrnoException);
    }
    const text = await readText(file);
    if (text === undefined) continue; // released in between
    const holder = parseHolder(text);
    if (holder === undefined || holderAlive(holder)) throw inUse(dataDir, file, holder);
    // Stale. Move it aside rather than unlink it: if another starting process replaced it with
    // its own lock in the meantime, we moved that one and put it back.
    const aside = `${file}.stale-${mine.nonce}`;
    try {
      await rename(file, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const movedText = (await readText(aside)) ?? '';
    if (parseHolder(movedText)?.nonce !== holder.nonce) {
      await writeFile(file, movedText, { flag: 'wx' }).catch(() => undefined);
    }
    await unlink(aside).catch(() => undefined);
  }
  throw inUse(dataDir, file, undefined);
}

function releaser(file: string, nonce: string): () => Promise<void> {
  let released: Promise<void> | undefined;
  return () =>
    (released ??= (async () => {
      heldHere.delete(file);
      const text = await readText(file).catch(() => undefined);
      if (text !== undefined && parseHolder(text)?.nonce === nonce) await unlink(file).catch(() => undefined);
    })());
}
