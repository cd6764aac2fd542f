/**
 * The package as it would be published: `npm run build` compiles it, `npm pack` ships dist/ and
 * the README (no sources, no tests), and each entry point of `exports` loads in plain Node by the
 * package's name (the workspace link), with its declarations beside it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';

const run = promisify(execFile);
const PACKAGE = path.resolve(import.meta.dirname, '../..');

beforeAll(async () => {
  await run('npm', ['run', '-s', 'build'], { cwd: PACKAGE, timeout: 120_000 });
}, 150_000);

it('packs dist and the README only', async () => {
  const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: PACKAGE,
    timeout: 60_000,
  });
  const files = (JSON.parse(stdout) as [{ files: { path: string }[] }])[0].files.map((f) => f.path);
  for (const entry of ['index', 'urql', 'apollo'])
    expect(files).toEqual(expect.arrayContaining([`dist/${entry}.js`, `dist/${entry}.d.ts`]));
  expect(files).toEqual(expect.arrayContaining(['README.md', 'package.json']));
  expect(files.filter((f) => !f.startsWith('dist/') && !['README.md', 'package.json'].includes(f))).toEqual([]);
});

it.each([
  ['@ovation/client', 'createOvationClient'],
  ['@ovation/client/urql', 'ovationExchange'],
  ['@ovation/client/apollo', 'OvationLink'],
])('%s loads in Node and exports %s', async (specifier, name) => {
  const { stdout } = await run(
    process.execPath,
    ['--input-type=module', '-e', `const m = await import('${specifier}'); console.log(typeof m.${name});`],
    {
      cwd: PACKAGE,
      timeout: 30_000,
    },
  );
  expect(stdout.trim()).toBe('function');
  expect(existsSync(path.join(PACKAGE, 'dist', `${specifier.split('/')[2] ?? 'index'}.d.ts`))).toBe(true);
});
