import type { ChildProcess } from 'node:child_process';

/**
 * Child processes this benchmark started, killed by PID on any exit path (normal, error,
 * SIGINT/SIGTERM, hard timeout). Nothing is killed by name.
 */
const live = new Map<number, string>();

export function track(pid: number, what: string): void {
  live.set(pid, what);
}

export function untrack(pid: number): void {
  live.delete(pid);
}

export function killAllTrackedSync(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const [pid] of live) {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
  live.clear();
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let installed = false;
/** On exit or a signal, every tracked child gets SIGKILL. `onSignal` runs first (best effort). */
export function installCleanup(onSignal?: () => Promise<void>): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => killAllTrackedSync('SIGKILL'));
  const handler = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\nbench: ${signal}: stopping child processes\n`);
    const hard = setTimeout(() => {
      killAllTrackedSync('SIGKILL');
      process.exit(130);
    }, 15_000);
    hard.unref();
    void (onSignal ? onSignal() : Promise.resolve()).finally(() => {
      killAllTrackedSync('SIGKILL');
      process.exit(130);
    });
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface TrackedChild {
  pid: number;
  /** Settles when the process has exited (it is untracked then). */
  exit: Promise<ExitStatus>;
  hasExited(): boolean;
  /** Captured stdout + stderr (the last `outputLimit` characters) when they are pipes. */
  output(): string;
}

/** Tracks a freshly spawned child by PID until it exits, and keeps the tail of its output. */
export function trackChild(child: ChildProcess, what: string, outputLimit = 20_000): TrackedChild {
  if (child.pid === undefined) throw new Error(`could not start ${what}`);
  const pid = child.pid;
  track(pid, what);
  let exited = false;
  const exit = new Promise<ExitStatus>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      untrack(pid);
      resolve({ code, signal });
    }),
  );
  let output = '';
  const append = (chunk: Buffer): void => {
    output += chunk.toString();
    if (output.length > outputLimit) output = output.slice(-Math.floor(outputLimit / 2));
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return { pid, exit, hasExited: () => exited, output: () => output };
}

/** Sends `signal` (unless it has exited), SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopChild(child: TrackedChild, signal: NodeJS.Signals, graceMs: number): Promise<ExitStatus> {
  const kill = (s: NodeJS.Signals): void => {
    if (child.hasExited()) return;
    try {
      process.kill(child.pid, s);
    } catch {
      /* gone */
    }
  };
  kill(signal);
  const killer = setTimeout(() => kill('SIGKILL'), graceMs);
  const status = await child.exit;
  clearTimeout(killer);
  return status;
}
