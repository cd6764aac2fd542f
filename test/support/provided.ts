/**
 * What the integration and e2e tiers' globalSetups (shared-servers.ts, server-build.ts) provide
 * to test files, typed for `inject`. In a file of its own so that modules reading it (backends.ts, app.ts,
 * server-process.ts) carry the declaration wherever they are compiled, also in the client kit's
 * test project, which does not compile shared-servers.ts.
 */
import { inject, type ProvidedContext } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the tier's shared PostgreSQL server (see test/support/backends.ts). */
    sharedPostgresUrl: string;
    /** Name of the migrated template database on it. */
    sharedPostgresTemplate: string;
    /** A migrated PGlite data directory, to be copied, never opened in place. */
    pgliteTemplateDir: string;
    /**
     * The e2e tiers' compiled server (server-build.ts): `dist/main.js` and
     * `test-support/process-clock.js` under it.
     */
    serverBuildDir: string;
  }
}

/**
 * `inject(key)`, or undefined outside a vitest worker: the bench scripts (bench/soak.ts) start
 * servers through these helpers too, with no tier setup to share, and `inject` throws there.
 */
export function provided<K extends keyof ProvidedContext>(key: K): ProvidedContext[K] | undefined {
  try {
    return inject(key);
  } catch {
    return undefined;
  }
}
