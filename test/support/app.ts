/** Starts the whole app in this process on a free loopback port, with a fresh DATA_DIR. */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inject } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { TEST_JWT_SECRET } from './graphql.js';
import { TEST_RATE_LIMITS } from './limits.js';

export interface TestApp {
  app: App;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startTestApp(env: Record<string, string | undefined> = {}): Promise<TestApp> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-test-'));
  // On the embedded default, start from a copy of the tier's migrated PGlite directory
  // (test/support/shared-servers.ts): the app opens and checks it as it would any existing data,
  // instead of paying PGlite's initdb on every start.
  const pgliteTemplate = inject('pgliteTemplateDir');
  if (!env['DATABASE_URL'] && pgliteTemplate) await cp(pgliteTemplate, path.join(dataDir, 'pglite'), { recursive: true });
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
  const app = await createApp(config);
  const { url } = await app.start();
  return {
    app,
    url,
    graphqlUrl: `${url}/graphql`,
    wsUrl: `${url.replace(/^http/, 'ws')}/graphql`,
    dataDir,
    async stop() {
      await app.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
