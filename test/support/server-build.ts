/**
 * Vitest globalSetup of the e2e tiers: src/ compiled once per `vitest run`, which the server
 * processes of test/support/server-process.ts run (`node dist/main.js`, the way production and the
 * bench run the server) instead of each carrying tsx. Under tsx a server start costs ~1.3 s more
 * CPU here (its module-hooks thread compiles or fetches from cache every module, the PGlite thread
 * registers tsx again), and every e2e file starts one or several. `npm start` itself (tsx)
 * stays the subject where a test is about it (zero-setup, readme: `sources: true`).
 *
 * The build is tsconfig.build.json's, without type checking (`npm run typecheck` does that), into
 * a temporary directory laid out like the package: dist/ beside links to the repository's
 * package.json (ESM), node_modules and prisma/ (the migrations, found from dist/ as in production).
 * The process clock preload (process-clock.ts) is compiled beside it. The build runs in the
 * background from the run's start (~4 s, while the unit tier runs); the first server start of a
 * file waits for it (a marker file), and fails with tsc's report if it failed.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import type { TestProject } from 'vitest/node';
import type {} from './provided.js'; // what setup() provides, typed
import { runShared } from './run-shared.js';
import { SERVER_BUILD_FAILED, SERVER_BUILT } from './server-process.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const shared = await runShared('server-build', startBuild);
  project.provide('serverBuildDir', shared.value);
  return shared.release;
}

/**
 * Starts the build and returns at once: it runs while the unit tier does (vitest runs every
 * globalSetup before the first test), and startServerProcess waits for its marker.
 */
async function startBuild(): Promise<{ value: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-server-build-'));
  const building = build(dir).then(
    () => writeFile(path.join(dir, SERVER_BUILT), ''),
    // tsc reports on stdout.
    (err: unknown) =>
      writeFile(path.join(dir, SERVER_BUILD_FAILED), `${String(err)}\n${(err as { stdout?: string }).stdout ?? ''}`),
  );
  return {
    value: dir,
    async stop() {
      await building.catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function build(dir: string): Promise<void> {
  await Promise.all(
    ['package.json', 'node_modules', 'prisma'].map((name) => symlink(path.join(ROOT, name), path.join(dir, name))),
  );
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  await promisify(execFile)(
    process.execPath,
    [tsc, '-p', 'tsconfig.build.json', '--noCheck', '--sourceMap', 'false', '--outDir', path.join(dir, 'dist')],
    { cwd: ROOT },
  );
  const clock = await readFile(path.join(ROOT, 'test/support/process-clock.ts'), 'utf8');
  const { outputText } = ts.transpileModule(clock, {
    fileName: 'process-clock.ts',
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  await mkdir(path.join(dir, 'test-support'));
  await writeFile(path.join(dir, 'test-support', 'process-clock.js'), outputText);
}
