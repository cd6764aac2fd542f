/**
 * Vitest globalSetup of the integration and e2e tiers: the expensive fixtures, made once per
 * `vitest run` in the main process (one set for every tier that names this file, see
 * run-shared.ts) and shared with every test file (each in its own fork) through provide/inject.
 *
 * - One PostgreSQL server, and on it a template database with every migration applied. A test
 *   file's database is `CREATE DATABASE x TEMPLATE <template>` (a file copy, ~0.1 s) instead of
 *   its own initdb + server start + migrations (several seconds of CPU each, more under load).
 * - A migrated PGlite data directory. An app on the embedded default gets a copy of it under its
 *   DATA_DIR (see startTestApp, and startServerProcess for e2e server processes): PGlite's first
 *   open of an empty directory runs initdb in WebAssembly (seconds of CPU), reopening an existing
 *   one takes a fraction of a second.
 *
 * Opening an empty database and migrating it from nothing (both kinds) stays covered where it is
 * the subject: test/integration/database.test.ts and migrate.test.ts, and end to end where a test
 * brings its own data dir (zero-setup, startup, shutdown, readme) or PostgreSQL database (e2e
 * files on PostgreSQL get an empty one, migrated by their server processes as before).
 *
 * Redis is not shared: a redis-server starts in a few milliseconds, and pub/sub channels are
 * server-wide (not per database index), so files running at the same time on one server could
 * receive each other's events. backends.ts starts one per file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { TestProject } from 'vitest/node';
import { MIGRATIONS_DIR } from '../../src/infra/database.js';
import { applyMigrations, pgliteRunner } from '../../src/infra/migrate.js';
import { createTestDatabase, migrateDatabase, startPostgres } from './postgres.js';
import type {} from './provided.js'; // what setup() provides, typed
import { runShared } from './run-shared.js';

const TEMPLATE_DATABASE = 'ovation_migrated';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Once per run, not per project: the three projects naming this file share one (run-shared.ts).
  const shared = await runShared('shared-servers', startSharedServers);
  project.provide('sharedPostgresUrl', shared.value.postgresUrl);
  project.provide('sharedPostgresTemplate', TEMPLATE_DATABASE);
  project.provide('pgliteTemplateDir', shared.value.pgliteTemplateDir);
  return shared.release;
}

async function startSharedServers(): Promise<{
  value: { postgresUrl: string; pgliteTemplateDir: string };
  stop(): Promise<void>;
}> {
  const pgliteRoot = await mkdtemp(path.join(os.tmpdir(), 'ovation-pglite-template-'));
  const postgresStarting = startPostgres();
  try {
    const pgliteTemplateDir = path.join(pgliteRoot, 'pglite');
    await Promise.all([
      migratedPGlite(pgliteTemplateDir),
      postgresStarting.then((server) => migratedTemplate(server.url)),
    ]);
    const postgres = await postgresStarting;
    return {
      value: { postgresUrl: postgres.url, pgliteTemplateDir },
      async stop() {
        await Promise.all([postgres.stop(), rm(pgliteRoot, { recursive: true, force: true })]);
      },
    };
  } catch (err) {
    await Promise.allSettled([
      postgresStarting.then((server) => server.stop()),
      rm(pgliteRoot, { recursive: true, force: true }),
    ]);
    throw err;
  }
}

async function migratedPGlite(dir: string): Promise<void> {
  const db = await PGlite.create(dir);
  try {
    await applyMigrations(pgliteRunner(db), MIGRATIONS_DIR);
  } finally {
    await db.close();
  }
}

async function migratedTemplate(adminUrl: string): Promise<void> {
  await migrateDatabase(await createTestDatabase(adminUrl, { name: TEMPLATE_DATABASE }));
}
