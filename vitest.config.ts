import { createRequire } from 'node:module';
import os from 'node:os';
import { defineConfig } from 'vitest/config';
import SpreadWaitingSequencer from './test/support/sequencer.js';

// Three tiers: unit first (sequence.groupOrder 0), then integration and e2e together (group 1).
//   npm test                  all tiers
//   npm run test:unit         vitest run --project unit   (likewise integration and e2e)
//   npm run test:client       the client kit's tests (packages/client/test: unit and e2e tiers)
// Every tier runs in child processes (pool 'forks'), so a test that starts servers (redis-server,
// postgres, chromium) can always clean them up by PID.
//
// Integration and e2e files share one pool of workers: an e2e file spends most of its time
// waiting (server processes starting, timers, a browser), an integration file mostly computing, so
// a third file at a time on the CI machine's 2 cores fills the waits instead of leaving a core idle
// (measured: a run's CPU was ~60% of one core with e2e files one at a time). Vitest puts projects
// of one groupOrder in one pool, and refuses different maxWorkers within a group, hence one value.
// The order in which workers take files: test/support/sequencer.ts.
const cpus = Math.max(1, os.availableParallelism());
const serverWorkers = Math.min(cpus + 1, 3);

// graphql 16 ships CJS (main) and ESM (module) builds without an "exports" map: Node resolves
// the CJS one for dependencies (Pothos, Yoga) while Vite would pick the ESM one for our files, and
// two copies of graphql refuse each other's types. Pin everything to the one Node resolves.
const graphqlEntry = createRequire(import.meta.url).resolve('graphql');

export default defineConfig({
  resolve: { alias: [{ find: /^graphql$/, replacement: graphqlEntry }] },
  test: {
    pool: 'forks',
    // A worker process runs file after file instead of a new process per file. A fresh process
    // per file paid, for every file again, the worker's start, loading src/ and its dependencies,
    // and V8's compiling them hot (measured on the integration tier alone: 383 s of CPU and 214 s
    // of wall with a process per file, 273 s and 156 s without). What the files share is the
    // module cache and the process: every file starts its own apps, servers and databases and
    // stops them in its after-hooks, and fake timers are put back after each test that uses them.
    // A file that leaves something running now shows in a later one: vitest reports an uncaught
    // error from it against whichever file runs then (see ignoreForcedDrop, test/support/postgres.ts).
    isolate: false,
    sequence: { sequencer: SpreadWaitingSequencer },
    // Never watch by accident (a bare `vitest` in a terminal would otherwise).
    watch: false,
    teardownTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'packages/*/test/unit/**/*.test.ts'],
          environment: 'node',
          pool: 'forks',
          maxWorkers: Math.min(cpus, 4),
          testTimeout: 10_000,
          hookTimeout: 30_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // One PostgreSQL server (migrated template database) and one migrated PGlite directory
          // for the whole tier, copied per file and app instead of initdb'd per file.
          globalSetup: ['test/support/shared-servers.ts'],
          environment: 'node',
          pool: 'forks',
          maxWorkers: serverWorkers,
          testTimeout: 30_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 1 },
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', 'packages/*/test/e2e/**/*.test.ts'],
          // The same shared fixtures as integration: a file's PostgreSQL database is a fresh one on
          // the tier's server, and a server process on a data dir of its own starts from a copy of
          // the migrated PGlite directory (test/support/server-process.ts).
          // ...and the server compiled once for every server process (test/support/server-build.ts).
          globalSetup: ['test/support/shared-servers.ts', 'test/support/server-build.ts'],
          environment: 'node',
          pool: 'forks',
          maxWorkers: serverWorkers,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
