/**
 * The shutdown stack: every resource registers how it closes as it is created, and stop() closes
 * them in the reverse order. Creation order is dependency order (a thing is built from what
 * exists before it), so closing in reverse lets each part finish with everything it uses still
 * open: votes in a batch are written before the tally publisher flushes its last broadcast, the
 * activity feed settles before the channels it writes to and the database go away.
 *
 * A failing step is logged and the rest still run: one stuck store must not keep the database
 * connection (or the data dir's lock) open.
 */
import type { Logger } from './logger.js';

export interface ShutdownStack {
  /** Registers `close` to run at shutdown, before everything registered earlier. */
  defer(name: string, close: () => void | Promise<void>): void;
  /** Runs every registered step, last registered first; resolves when all have run. Once. */
  close(): Promise<void>;
}

export function createShutdownStack(logger: Pick<Logger, 'error'>): ShutdownStack {
  const steps: { name: string; close: () => void | Promise<void> }[] = [];
  let closing: Promise<void> | undefined;

  async function run(): Promise<void> {
    for (let step = steps.pop(); step; step = steps.pop()) {
      try {
        await step.close();
      } catch (error) {
        logger.error(`shutdown: ${step.name} failed to close`, { error });
      }
    }
  }

  return {
    defer(name, close) {
      if (closing) throw new Error(`shutdown: ${name} registered after shutdown began`);
      steps.push({ name, close });
    },
    close: () => (closing ??= run()),
  };
}
