/** Shared by the test harnesses that start server processes (postgres, redis-server). */
import type { ChildProcess } from 'node:child_process';

/** Last bytes of a process's output, for error messages. */
export class OutputTail {
  private text = '';
  constructor(private readonly limit = 16_384) {}
  append(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.limit) this.text = this.text.slice(-this.limit);
  }
  toString(): string {
    return this.text.trim();
  }
}

/** Every live server, so that they can be killed if the test process exits without stop(). */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Kills `child` when the test process exits, unless it exited first. */
export function killOnExit(child: ChildProcess): void {
  if (child.pid === undefined) return;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    const killAll = (): void => {
      for (const running of live) {
        try {
          running.kill('SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    process.once('exit', killAll);
    // A vitest worker is ended by a signal, and 'exit' does not run then: servers kept for the
    // whole process (the shared Redis Cluster) outlived the run.
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      process.once(signal, () => {
        killAll();
        process.exit(code);
      });
    }
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Whether a process with this PID exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
