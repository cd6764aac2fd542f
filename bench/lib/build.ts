/**
 * The servers under test run as compiled JavaScript, the way production runs them (Dockerfile:
 * `npm run build`, `node dist/main.js`): under tsx every server would also carry the TypeScript
 * loader (a module-hooks thread, source maps kept in memory: ~80 MB of RSS on Ovation here) that
 * production never has. The references are compiled too, so every target is measured alike.
 *
 * ensureBuilt() recompiles only when a source file is newer than the last build (the suite calls
 * it once; each bench/run.ts then finds it up to date).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Where bench/reference/*.ts is compiled to (gitignored). */
export const REFERENCE_BUILD_DIR = path.join(ROOT, 'bench', '.build');
const STAMP = path.join(REFERENCE_BUILD_DIR, '.stamp');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(full).mtimeMs);
  }
  return newest;
}

export function ensureBuilt(log: (line: string) => void = () => {}): void {
  const sources = Math.max(newestMtime(path.join(ROOT, 'src')), newestMtime(path.join(ROOT, 'bench', 'reference')));
  const built = existsSync(STAMP) && existsSync(path.join(ROOT, 'dist', 'main.js')) ? statSync(STAMP).mtimeMs : 0;
  if (built > sources) return;
  const started = Date.now();
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  execFileSync(
    process.execPath,
    [
      tsc,
      ...['--outDir', REFERENCE_BUILD_DIR, '--rootDir', path.join(ROOT, 'bench', 'reference')],
      ...['--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node'],
      ...['--strict', '--skipLibCheck', '--esModuleInterop'],
      path.join(ROOT, 'bench', 'reference', 'raw-ws.ts'),
      path.join(ROOT, 'bench', 'reference', 'stock-yoga.ts'),
    ],
    { cwd: ROOT, stdio: 'inherit' },
  );
  writeFileSync(STAMP, new Date().toISOString());
  log(`  compiled src/ → dist/ and bench/reference/ → bench/.build/ in ${Date.now() - started} ms`);
}
