/**
 * What the Dockerfile does, run here step by step (CI has no Docker engine):
 * - stage `build`: this repository is its equivalent (a full install), plus `npm run build`;
 * - stage `deps`: its COPY lines and its `npm ci` command (from npm's cache: CI's own `npm ci`
 *   filled it), in a directory of its own: a production install without dev tooling;
 * - the last stage: its COPY lines lay out a directory as the image is, where its CMD serves the
 *   API and its HEALTHCHECK, run as Docker runs it, follows PORT.
 * The compiled build also serves from the repository, as bench/ runs it.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { MeDocument } from '../generated/graphql.js';
import { dataOf, execute, TEST_JWT_SECRET, tokenFor } from '../support/graphql.js';
import { freePort } from '../support/ports.js';
import { startServerProcess } from '../support/server-process.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

let built: Promise<unknown> | undefined;
const build = (): Promise<unknown> => (built ??= run('npm', ['run', '-s', 'build'], { cwd: ROOT, timeout: 180_000 }));

/**
 * Stage deps: its files, then its npm ci (not the cache clean that follows it in the image), in a
 * directory of its own; resolves with that directory and the install's output. It needs nothing
 * of stage build (as in the Dockerfile, where the two stages are built independently), so it runs
 * while the first test builds.
 */
let depsInstalled: Promise<{ dir: string; stdout: string }> | undefined;
const depsStage = (): Promise<{ dir: string; stdout: string }> =>
  (depsInstalled ??= (async () => {
    const dir = await tempDir('ovation-deps-');
    for (const args of instructions('deps', 'COPY')) await copy(args, dir, { build: ROOT });
    const [install] = instructions('deps', 'RUN').map((args) => args.split('&&')[0]!.trim());
    expect(install).toMatch(/^npm ci --omit=dev\b/);
    const { stdout } = await run('sh', ['-c', install!], {
      cwd: dir,
      env: {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        npm_config_prefer_offline: 'true',
        npm_config_update_notifier: 'false',
      },
      timeout: 240_000,
    });
    return { dir, stdout };
  })());

beforeAll(() => {
  // Both started now, each awaited (and its failure reported) by the test that needs it.
  for (const started of [build(), depsStage()]) started.catch(() => undefined);
});

interface Instruction {
  op: string;
  args: string;
}

/** The Dockerfile's stages by name (the last one also as 'image'), instructions in order. */
function dockerfileStages(): Map<string, Instruction[]> {
  const stages = new Map<string, Instruction[]>();
  let current: Instruction[] = [];
  for (const line of readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').split('\n')) {
    const match = /^([A-Z]+)\s+(.*)$/.exec(line.trim());
    if (!match) continue;
    const [, op, args] = match as unknown as [string, string, string];
    if (op === 'FROM') {
      current = [];
      stages.set(/\sAS\s+(\S+)/i.exec(args)?.[1] ?? 'image', current);
    }
    current.push({ op, args });
  }
  return stages;
}

function instructions(stage: string, op: string): string[] {
  const found = dockerfileStages().get(stage);
  if (!found) throw new Error(`Dockerfile has no stage ${stage}`);
  return found.filter((i) => i.op === op).map((i) => i.args);
}

/** COPY as Docker does it: a directory's contents into the destination, a file into a `dir/`. */
async function copy(args: string, into: string, stageDirs: Record<string, string>): Promise<void> {
  const words = args.split(/\s+/);
  const from = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
  const dest = words.pop()!;
  for (const src of words) {
    const source = from ? path.join(stageDirs[from]!, src.replace(/^\/app\//, '')) : path.join(ROOT, src);
    const isDir = (await stat(source)).isDirectory();
    const target = !isDir && dest.endsWith('/') ? path.join(into, dest, path.basename(src)) : path.join(into, dest);
    await cp(source, target, { recursive: true });
  }
}

/** The HEALTHCHECK's exec-form command, `node` being this Node. */
function healthcheckCommand(): string[] {
  const [healthcheck] = instructions('image', 'HEALTHCHECK');
  const command = JSON.parse(/\bCMD\s+(\[.*\])$/.exec(healthcheck ?? '')?.[1] ?? 'null') as string[] | null;
  expect(command?.[0]).toBe('node');
  return [process.execPath, ...command!.slice(1)];
}

async function exitCode(command: string[], env: Record<string, string>): Promise<number> {
  return run(command[0]!, command.slice(1), { env: { PATH: process.env['PATH'], ...env }, timeout: 30_000 }).then(
    () => 0,
    (error: { code: number }) => error.code,
  );
}

it('the compiled build (npm run build, node dist/main.js) serves from the repository', async () => {
  await build();
  const server = await startServerProcess({}, { entry: ['dist/main.js'] });
  try {
    const token = await tokenFor({ sub: 'dist-user', name: 'Dist', role: 'AUDIENCE' });
    expect(dataOf(await execute(fetch, server.graphqlUrl, MeDocument, {}, token)).me).toEqual({
      id: 'dist-user',
      name: 'Dist',
      role: 'AUDIENCE',
    });
  } finally {
    await server.stop();
  }
}, 240_000);

it("the image's layout: a production install without dev tooling serves the build, and the HEALTHCHECK follows PORT", async () => {
  const [, deps] = await Promise.all([build(), depsStage()]);
  const stageDirs: Record<string, string> = { build: ROOT, deps: deps.dir };
  expect(deps.stdout).toContain('postinstall: no dev dependencies (a production install)');
  const installed = await readdir(path.join(stageDirs['deps']!, 'node_modules'));
  for (const devTool of ['typescript', 'prisma', 'tsx', 'esbuild', 'vitest', 'playwright-core'])
    expect(installed).not.toContain(devTool);
  expect(await readdir(path.join(stageDirs['deps']!, 'node_modules', '@prisma'))).not.toContain('studio-core');
  expect(installed).toContain('@graphql-yoga'); // render-graphiql: GraphiQL works in production
  expect(existsSync(path.join(stageDirs['deps']!, 'src'))).toBe(false); // nothing generated

  // The image: its COPY lines, its ENV, its CMD.
  const image = await tempDir('ovation-image-');
  for (const args of instructions('image', 'COPY')) await copy(args, image, stageDirs);
  const [cmd] = instructions('image', 'CMD').map((args) => JSON.parse(args) as string[]);
  expect(cmd?.[0]).toBe('node');
  const [imageEnv] = instructions('image', 'ENV');
  expect(imageEnv).toMatch(/\bNODE_ENV=production\b/);
  const server = await startServerProcess({ NODE_ENV: 'production' }, { entry: cmd!.slice(1), cwd: image });
  try {
    const token = await tokenFor({ sub: 'image-user', name: 'Image', role: 'AUDIENCE' });
    expect(dataOf(await execute(fetch, server.graphqlUrl, MeDocument, {}, token)).me).toEqual({
      id: 'image-user',
      name: 'Image',
      role: 'AUDIENCE',
    });
    expect((await fetch(server.graphqlUrl, { headers: { accept: 'text/html' } })).status).toBe(200);

    // `docker compose exec app1 node dist/token.js …`, as the banner prints it.
    const printed = /Get a token\s+(.+)$/m.exec(server.output())?.[1];
    expect(printed).toBe('node dist/token.js --sub alice --name Alice --role ADMIN');
    const { stdout: token2 } = await run(process.execPath, printed!.split(' ').slice(1), {
      cwd: image,
      env: { PATH: process.env['PATH'], NODE_ENV: 'production', JWT_SECRET: TEST_JWT_SECRET },
    });
    expect(dataOf(await execute(fetch, server.graphqlUrl, MeDocument, {}, token2.trim())).me).toMatchObject({
      id: 'alice',
      role: 'ADMIN',
    });

    const port = new URL(server.url).port;
    expect(await exitCode(healthcheckCommand(), { PORT: port, HOST: '127.0.0.1' })).toBe(0);
    expect(await exitCode(healthcheckCommand(), { PORT: port })).toBe(0); // HOST unset: 0.0.0.0
    expect(await exitCode(healthcheckCommand(), { PORT: String(await freePort()) })).toBe(1);
  } finally {
    await server.stop();
  }
}, 400_000);
