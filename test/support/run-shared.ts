/**
 * One instance of a globalSetup fixture for the whole `vitest run`, however many projects name
 * it. Vitest runs each project's globalSetup of its own (integration and e2e both name
 * shared-servers.ts), every one before the first test and every teardown after the last, all in
 * the main process; a module may be loaded once per project there, but globalThis is one. So the
 * first project to set up starts the fixture, the others take it, and the last teardown stops it.
 */
interface Entry {
  started: Promise<{ value: unknown; stop(): Promise<void> }>;
  users: number;
}

const REGISTRY = Symbol.for('ovation.test.runShared');
const registry = ((globalThis as { [REGISTRY]?: Map<string, Entry> })[REGISTRY] ??= new Map<string, Entry>());

/** Starts `key`'s fixture with `start` unless this run has it; `release` stops it after its last user. */
export async function runShared<T>(
  key: string,
  start: () => Promise<{ value: T; stop(): Promise<void> }>,
): Promise<{ value: T; release(): Promise<void> }> {
  let entry = registry.get(key);
  if (!entry) {
    entry = { started: start(), users: 0 };
    registry.set(key, entry);
  }
  entry.users += 1;
  const mine = entry;
  let started: Awaited<Entry['started']>;
  try {
    started = await mine.started;
  } catch (err) {
    if (registry.get(key) === mine) registry.delete(key); // the next setup tries afresh
    throw err;
  }
  let released = false;
  return {
    value: started.value as T,
    async release() {
      if (released) return;
      released = true;
      mine.users -= 1;
      if (mine.users > 0) return;
      if (registry.get(key) === mine) registry.delete(key);
      await started.stop();
    },
  };
}
