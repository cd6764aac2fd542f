/** Process entry: loadConfig() → createApp() → start(); SIGTERM/SIGINT → stop() within 10 s. */
import { fileURLToPath } from 'node:url';
import { StartupError, loadConfig } from './config.js';
import { banner } from './banner.js';
import { assertDataDirFree } from './infra/data-dir-lock.js';
import { assertPortFree } from './infra/port.js';

const HARD_EXIT_MS = 10_000;

async function main(): Promise<void> {
  const config = loadConfig();
  // A busy PORT or DATA_DIR fails now, before loading the app takes seconds (createApp checks
  // again, and the database's lock is what really guards DATA_DIR).
  await assertPortFree(config.port, config.host);
  if (!config.databaseUrl) await assertDataDirFree(config.dataDir);
  const { createApp } = await import('./app.js');
  const app = await createApp(config);
  let url: string;
  try {
    ({ url } = await app.start());
  } catch (error) {
    await app.stop().catch(() => undefined); // the database is open: close it cleanly
    throw error;
  }
  const pubsub = config.redisUrl ? 'Redis' : 'in-process';
  const db = config.databaseUrl ? 'PostgreSQL' : `embedded PGlite in ${config.dataDir}`;
  app.logger.info(`Ovation ready: database ${db}, pubsub ${pubsub}`);
  // src/main.ts through tsx, or dist/main.js: either way the package root is one level up.
  const compiled = import.meta.url.endsWith('.js');
  const packageRoot = fileURLToPath(new URL('..', import.meta.url));
  process.stdout.write(banner({ url, config, packageRoot, cwd: process.cwd(), compiled }) + '\n');

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) process.exit(1); // a second Ctrl-C means now
    app.logger.info(`${signal} received: shutting down`);
    setTimeout(() => {
      app.logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, HARD_EXIT_MS).unref();
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        app.logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((error: unknown) => {
  if (error instanceof StartupError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`Ovation failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
