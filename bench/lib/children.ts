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
