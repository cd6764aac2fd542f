/**
 * The embedded default as a user meets it: no DATABASE_URL, no REDIS_URL, no JWT_SECRET. The
 * server generates a dev secret under DATA_DIR, and `npm run token` in the same DATA_DIR signs
 * tokens it accepts. Bad configuration stops the start with a message naming the variable.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { MeDocument } from '../generated/graphql.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { startServerProcess } from '../support/server-process.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-zero-'));
  dirs.push(dir);
  return dir;
}

it('serves with no configuration and accepts tokens from npm run token', async () => {
  const dataDir = await tempDir();
  const server = await startServerProcess({ JWT_SECRET: '' }, { dataDir });
  try {
    expect(server.output()).toContain(`${server.url}/graphql`);
    expect(server.output()).toContain('npm run token');
    expect((await stat(path.join(dataDir, 'jwt-secret'))).mode & 0o777).toBe(0o600);

    const { stdout } = await run('npm', ['run', '-s', 'token', '--', '--sub', 'alice', '--name', 'Alice', '--role', 'ADMIN'], {
      cwd: ROOT,
      env: { ...process.env, DATA_DIR: dataDir, JWT_SECRET: '' },
    });
    const token = stdout.trim();
    expect(dataOf(await execute(fetch, server.graphqlUrl, MeDocument, {}, token)).me).toEqual({ id: 'alice', name: 'Alice', role: 'ADMIN' });
  } finally {
    await server.stop();
  }
});

// Production runs the compiled build (Dockerfile: npm run build, node dist/main.js), and so does
// bench/: it must start from a clean build and serve the same API, migrations included.
it('the production build (npm run build, node dist/main.js) starts and serves', async () => {
  await run('npm', ['run', '-s', 'build'], { cwd: ROOT, timeout: 120_000 });
  const server = await startServerProcess({}, { entry: ['dist/main.js'] });
  try {
    const token = await tokenFor({ sub: 'dist-user', name: 'Dist', role: 'AUDIENCE' });
    expect(dataOf(await execute(fetch, server.graphqlUrl, MeDocument, {}, token)).me).toEqual({ id: 'dist-user', name: 'Dist', role: 'AUDIENCE' });
  } finally {
    await server.stop();
  }
}, 180_000);

it.each([
  ['PORT', 'not-a-port'],
  ['DATABASE_URL', 'mysql://nope'],
  ['TALLY_FLUSH_MS', '-5'],
])('refuses to start with %s=%s, naming the variable', async (name, value) => {
  const dataDir = await tempDir();
  const error = await run(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'], DATA_DIR: dataDir, [name]: value },
    timeout: 30_000,
  }).then(
    () => undefined,
    (failure: { code: number; stderr: string }) => failure,
  );
  expect(error?.code).toBe(1);
  expect(error?.stderr).toContain(name);
});
