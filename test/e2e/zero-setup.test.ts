/**
 * The embedded default as a user meets it: no DATABASE_URL, no REDIS_URL, no JWT_SECRET. The
 * server generates a dev secret under DATA_DIR, and the token command its banner prints, run as
 * printed from another shell, signs tokens it accepts. Bad configuration stops the start with a
 * message naming the variable.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import { MeDocument } from '../generated/graphql.js';
import { dataOf, execute } from '../support/graphql.js';
import { startServerProcess } from '../support/server-process.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

/**
 * Runs the banner's "Get a token" command the way a person pastes it into another shell: in the
 * repository, without the server's environment (plus `env`). Returns the token (its last line).
 */
async function runPrintedTokenCommand(output: string, env: Record<string, string> = {}): Promise<string> {
  const command = /Get a token\s+(.+)$/m.exec(output)?.[1];
  expect(command).toBeDefined();
  const { stdout } = await run('sh', ['-c', command!], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
    timeout: 60_000,
  });
  return stdout.trim().split('\n').at(-1)!;
}

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-zero-'));
  dirs.push(dir);
  return dir;
}

it('serves with no configuration (a DATA_DIR of its own) and accepts tokens from the command its banner prints', async () => {
  const dataDir = await tempDir();
  const server = await startServerProcess({ JWT_SECRET: '' }, { dataDir, sources: true }); // npm start, whose banner this is about
  try {
    expect(server.output()).toContain(`${server.url}/graphql`);
    expect(server.output()).toContain(`DATA_DIR=${dataDir} npm run token -- --sub alice --name Alice --role ADMIN`);
    expect((await stat(path.join(dataDir, 'jwt-secret'))).mode & 0o777).toBe(0o600);

    const token = await runPrintedTokenCommand(server.output());
    expect(dataOf(await execute(fetch, server.graphqlUrl, MeDocument, {}, token)).me).toEqual({
      id: 'alice',
      name: 'Alice',
      role: 'ADMIN',
    });
  } finally {
    await server.stop();
  }
});

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
