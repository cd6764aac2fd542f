/** Starts the whole app in this process on a free loopback port, with a fresh DATA_DIR. */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { afterAll, beforeAll } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { freshDatabase, type Backend } from './backends.js';
import { execute, TEST_JWT_SECRET, type GraphQLResponse } from './graphql.js';
import { TEST_RATE_LIMITS } from './limits.js';
import { provided } from './provided.js';

export interface TestApp {
  app: App;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  dataDir: string;
  stop(): Promise<void>;
}

/**
 * opts.dataDir: start on this DATA_DIR (e.g. again after a stop) and leave it in place on stop.
 * opts.now: the app's clock (a {@link import('./clock.js').TestClock}'s now); default Date.now.
 * opts.postgres: instead of the embedded default (unless env names a database), a fresh database
 * on the tier's shared PostgreSQL server, dropped on stop: for files whose subject is not where
 * the data lives (JWT rules, limits, transports). An app on PGlite costs ~1.7 s of CPU to open and
 * close (its thread, WebAssembly), one on PostgreSQL ~50 ms; the embedded default stays covered by
 * every file that runs on `backends`.
 */
export async function startTestApp(
  env: Record<string, string | undefined> = {},
  opts: { dataDir?: string; now?: () => number; postgres?: boolean } = {},
): Promise<TestApp> {
  if (opts.postgres && env['DATABASE_URL'] === undefined) {
    const database = await freshDatabase();
    try {
      const t = await startTestApp({ ...env, DATABASE_URL: database.url }, { ...opts, postgres: false });
      return {
        ...t,
        async stop() {
          try {
            await t.stop();
          } finally {
            await database.drop();
          }
        },
      };
    } catch (err) {
      await database.drop();
      throw err;
    }
  }
  const ownDataDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? (await mkdtemp(path.join(os.tmpdir(), 'ovation-test-')));
  // On the embedded default, a new data dir starts from a copy of the tier's migrated PGlite
  // directory (test/support/shared-servers.ts): the app opens and checks it as it would any
  // existing data, instead of paying PGlite's initdb on every start.
  const pgliteTemplate = provided('pgliteTemplateDir');
  if (ownDataDir && !env['DATABASE_URL'] && pgliteTemplate)
    await cp(pgliteTemplate, path.join(dataDir, 'pglite'), { recursive: true });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    NODE_ENV: 'test',
    LOG_LEVEL: 'error',
    JWT_SECRET: TEST_JWT_SECRET,
    TALLY_FLUSH_MS: '20',
    // Test traffic is many fresh accounts on 127.0.0.1 voting fast: exactly what fraud detection
    // is for. Off by default here; test/integration/fraud.test.ts and test/e2e/fraud.test.ts turn it on.
    FRAUD_DETECTION_ENABLED: 'false',
    ...TEST_RATE_LIMITS,
    ...env,
  });
  const app = await createApp(config, { now: opts.now });
  const { url } = await app.start();
  return {
    app,
    url,
    graphqlUrl: `${url}/graphql`,
    wsUrl: `${url.replace(/^http/, 'ws')}/graphql`,
    dataDir,
    async stop() {
      await app.stop();
      if (ownDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The app of a describe block, as {@link useTestApp} hands it out. */
export interface AppFixture extends Omit<TestApp, 'stop'> {
  /** What the backend added to the app's env (DATABASE_URL, REDIS_URL; empty on the embedded default). */
  readonly backendEnv: Record<string, string>;
  /** A GraphQL request over HTTP to this app, as `token`'s user (anonymous without one). */
  gql<R, V>(document: TypedDocumentNode<R, V>, variables: V, token?: string): Promise<GraphQLResponse<R>>;
}

/**
 * The setup block every app-level file needs, once: registers beforeAll/afterAll in the calling
 * describe block (or file) that start `backend` and an app on it with `env` (and `opts.now` as its
 * clock, see test/support/clock.ts), and stop both after the block's tests. The returned object reads the running app, so use it inside tests and hooks
 * (registered after this call), not while describe blocks are being collected.
 */
export function useTestApp(
  backend: Backend,
  env: Record<string, string | undefined> = {},
  opts: { now?: () => number } = {},
): AppFixture {
  let infra: Awaited<ReturnType<Backend['start']>> | undefined;
  let t: TestApp | undefined;
  beforeAll(async () => {
    infra = await backend.start();
    t = await startTestApp({ ...infra.env, ...env }, { now: opts.now });
  });
  afterAll(async () => {
    try {
      await t?.stop();
    } finally {
      await infra?.stop();
    }
  });
  const running = (): TestApp => {
    if (!t) throw new Error('useTestApp: the app is not running (use it inside tests and hooks)');
    return t;
  };
  return {
    get backendEnv() {
      running();
      return infra?.env ?? {};
    },
    get app() {
      return running().app;
    },
    get url() {
      return running().url;
    },
    get graphqlUrl() {
      return running().graphqlUrl;
    },
    get wsUrl() {
      return running().wsUrl;
    },
    get dataDir() {
      return running().dataDir;
    },
    gql: (document, variables, token) => execute(fetch, running().graphqlUrl, document, variables, token),
  };
}
