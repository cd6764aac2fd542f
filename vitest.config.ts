import { createRequire } from 'node:module';
import os from 'node:os';
import { defineConfig } from 'vitest/config';

// Three tiers, run one after another (sequence.groupOrder): unit, then integration, then e2e.
//   npm test                  all tiers
//   npm run test:unit         vitest run --project unit   (likewise integration, e2e)
//   npm run test:client       the client kit's tests (packages/client/test: unit and e2e tiers)
// Every tier runs in child processes (pool 'forks'), so a test that starts servers (redis-server,
// postgres, chromium) can always clean them up by PID.
//
// Worker counts are kept small on purpose: the CI machine has 2 cores, and integration and e2e
// files start real servers, whose start-up is CPU-bound and slows down under contention.
// Vitest refuses two projects with different maxWorkers in the same groupOrder, hence one group
// per tier.
const cpus = Math.max(1, os.availableParallelism());

// graphql 16 ships CJS (main) and ESM (module) builds without an "exports" map: Node resolves
// the CJS one for dependencies (Pothos, Yoga) while Vite would pick the ESM one for our files, and
// two copies of graphql refuse each other's types. Pin everything to the one Node resolves.
const graphqlEntry = createRequire(import.meta.url).resolve('graphql');

export default defineConfig({
  resolve: { alias: [{ find: /^graphql$/, replacement: graphqlEntry }] },
  test: {
    pool: 'forks',
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
          maxWorkers: Math.min(cpus, 2),
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
          globalSetup: ['test/support/shared-servers.ts'],
          environment: 'node',
          pool: 'forks',
          // One file at a time: e2e files start the whole stack and a browser.
          fileParallelism: false,
          maxWorkers: 1,
          testTimeout: 60_000,
          hookTimeout: 60_000,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
