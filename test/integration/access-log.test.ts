/**
 * One access line per operation (type, root field, duration, code) with its request id (the
 * client's X-Request-ID when sane, else a fresh one), slow operations flagged at warn, and the
 * token never in a line.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/infra/logger.js';
import { CreateCompetitionDocument, OpenCompetitionDocument } from '../generated/graphql.js';
import { execute, TEST_JWT_SECRET, tokenFor } from '../support/graphql.js';
import { TEST_RATE_LIMITS } from '../support/limits.js';

type Line = Record<string, unknown>;

async function startLogged(
  env: Record<string, string>,
): Promise<{ app: App; url: string; lines: Line[]; stop(): Promise<void> }> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-access-log-'));
  const lines: Line[] = [];
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    NODE_ENV: 'test',
    JWT_SECRET: TEST_JWT_SECRET,
    FRAUD_DETECTION_ENABLED: 'false',
    ...TEST_RATE_LIMITS,
    ...env,
  });
  const app = await createApp(config, {
    logger: createLogger({ level: 'info', write: (line) => lines.push(JSON.parse(line) as Line) }),
  });
  const { url } = await app.start();
  return {
    app,
    url,
    lines,
    async stop() {
      await app.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

describe('access log', () => {
  let server: Awaited<ReturnType<typeof startLogged>>;
  beforeAll(async () => {
    server = await startLogged({ SLOW_OPERATION_MS: '60000' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('writes one line per operation with the client’s request id, type, root field, duration and code', async () => {
    const admin = await tokenFor({ sub: 'log-admin', name: 'Admin', role: 'ADMIN' });
    const fetchWithId: typeof fetch = (input, init) =>
      fetch(input, {
        ...init,
        headers: { ...(init?.headers as Record<string, string>), 'x-request-id': 'client-req-42' },
      });
    await execute(
      fetchWithId,
      `${server.url}/graphql`,
      CreateCompetitionDocument,
      { input: { title: 'Logged', votingMethod: 'SIMPLE' } },
      admin,
    );
    await execute(fetch, `${server.url}/graphql`, OpenCompetitionDocument, { id: 'missing' }, admin);

    const access = server.lines.filter((l) => l['msg'] === 'operation');
    expect(access).toHaveLength(2);
    expect(access[0]).toMatchObject({
      level: 'info',
      requestId: 'client-req-42',
      type: 'mutation',
      field: 'createCompetition',
      operationName: 'CreateCompetition',
      code: 'OK',
    });
    expect(access[0]!['durationMs']).toBeTypeOf('number');
    expect(access[1]).toMatchObject({ type: 'mutation', field: 'openCompetition', code: 'NOT_FOUND' });
    expect(access[1]!['requestId']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(server.lines)).not.toContain(admin);
  });

  it('replaces a request id that is not a sane token', async () => {
    const weird = 'x'.repeat(65);
    await fetch(`${server.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': weird },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    const line = server.lines.filter((l) => l['msg'] === 'operation').at(-1);
    expect(line).toMatchObject({ field: '__typename', code: 'OK' });
    expect(line!['requestId']).not.toBe(weird);
  });
});

describe('slow operations', () => {
  it('are logged at warn with slow: true', async () => {
    const server = await startLogged({ SLOW_OPERATION_MS: '1' });
    try {
      const admin = await tokenFor({ sub: 'log-admin', name: 'Admin', role: 'ADMIN' });
      await execute(
        fetch,
        `${server.url}/graphql`,
        CreateCompetitionDocument,
        { input: { title: 'Slow', votingMethod: 'SIMPLE' } },
        admin,
      );
      expect(server.lines.filter((l) => l['msg'] === 'slow operation')).toEqual([
        expect.objectContaining({
          level: 'warn',
          slow: true,
          type: 'mutation',
          field: 'createCompetition',
          code: 'OK',
        }),
      ]);
    } finally {
      await server.stop();
    }
  });
});
