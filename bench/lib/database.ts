/**
 * A migrated database for a benchmark that drives the code directly (no server): a throwaway
 * PostgreSQL 15 (./postgres.ts) or an embedded PGlite on disk in a temp dir, as the app opens
 * them; closed and removed when `fn` settles.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type Database } from '../../src/infra/database.js';
import { startPostgres } from './postgres.js';

export async function withDatabase<T>(
  backend: 'postgres' | 'pglite',
  poolSize: number,
  fn: (db: Database) => Promise<T>,
): Promise<T> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ovation-bench-db-'));
  const pg = backend === 'postgres' ? await startPostgres() : undefined;
  try {
    const db = await openDatabase({ databaseUrl: pg?.url, dataDir, poolSize });
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  } finally {
    await pg?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The backends named in a `--backend postgres,pglite` option. */
export function backendsOf(option: string): ('postgres' | 'pglite')[] {
  return option.split(',').map((name) => {
    if (name !== 'postgres' && name !== 'pglite') throw new Error(`--backend: postgres or pglite, not ${name}`);
    return name;
  });
}
