/** Builds the three apps with Vite (apps/live/vite.config.ts) into `outDir`. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';

export const APPS_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function buildApps(outDir = path.join(APPS_ROOT, 'dist')): Promise<string> {
  await build({
    configFile: path.join(APPS_ROOT, 'vite.config.ts'),
    root: APPS_ROOT,
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
  return outDir;
}
