/**
 * How Ovation opens PGlite, shared by the database thread (pglite-worker.ts) and the one-off child
 * process that creates a new data directory (this file run as a program, see pglite-thread.ts).
 * Loaded only there: the serving thread of the app never imports PGlite.
 *
 *   node pglite-create.js <new data directory>     (exit 0 once the cluster is created and closed)
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';

/**
 * PostgreSQL settings on top of PGlite's own start parameters. shared_buffers: PGlite keeps
 * postgresql.conf's 128 MB, all of it touched at start (measured: 308 MB resident with it, 177 MB
 * with 16 MB). An embedded database that serves one app is small and the OS caches its files, so
 * 16 MB (twice PostgreSQL's built-in default) is what it gets.
 */
const SETTINGS = ['shared_buffers=16MB'];

export function openPGlite(dir: string): Promise<PGlite> {
  return PGlite.create(dir, {
    startParams: [...PGlite.defaultStartParams, ...SETTINGS.flatMap((setting) => ['-c', setting])],
  });
}

// Run as a program: initdb into the given directory. PGlite's initdb runs two more WebAssembly
// instances next to the database's own and never gives their memory back (~550 MB resident after
// it, ~300 MB for an existing directory), so it runs in a process of its own that then exits.
if (isMainThread && isEntryPoint()) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: pglite-create <new data directory>\n');
    process.exit(2);
  }
  try {
    const db = await openPGlite(dir);
    await db.close();
    process.exit(0);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
}

function isEntryPoint(): boolean {
  try {
    return (
      process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
    );
  } catch {
    return false;
  }
}
