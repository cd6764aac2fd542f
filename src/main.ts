/**
 * Process entry: loadConfig() → createApp() → start(); SIGTERM/SIGINT → stop() within
 * SHUTDOWN_TIMEOUT_MS (+ 2 s to finish). With WORKERS > 1 this process is the cluster's primary
 * (cluster.ts) and each worker runs this same file as one server.
 */
import cluster from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { StartupError, loadConfig, type Config } from './config.js';
import { banner } from './banner.js';
import { runPrimary, tellPrimary, withFields, workerMetricsLink } from './cluster.js';
import { assertDataDirFree } from './infra/data-dir-lock.js';
import { createLogger } from './infra/logger.js';
import { assertPortFree } from './infra/port.js';

/** After SHUTDOWN_TIMEOUT_MS connections are cut; this much more finishes the drain (votes, tallies). */
const DRAIN_AFTER_CUT_MS = 2_000;

function printBanner(url: string, config: Config): void {
  // src/main.ts through tsx, or dist/main.js: either way the package root is one level up.
  const compiled = import.meta.url.endsWith('.js');
  const packageRoot = fileURLToPath(new URL('..', import.meta.url));
  process.stdout.write(banner({ url, config, packageRoot, cwd: process.cwd(), compiled }) + '\n');
}

/** One server in this process: the whole of it with WORKERS=1, or one cluster worker. */
async function serve(config: Config): Promise<void> {
  const worker = cluster.isWorker;
  // Ctrl-C reaches every process of the terminal's group: the primary stops the workers.
  if (worker) process.on('SIGINT', () => undefined);
  // A busy PORT or DATA_DIR fails now, before loading the app takes seconds (createApp checks
  // again, and the database's lock is what really guards DATA_DIR). A worker skips the port: its
  // primary checked it.
  await assertPortFree(config.port, config.host);
  if (!config.databaseUrl) await assertDataDirFree(config.dataDir);
  const { createApp } = await import('./app.js');
  // Workers log into one stream: each line names its process.
  const app = await createApp(
    config,
    worker
      ? {
          logger: withFields(createLogger({ level: config.logLevel, pretty: config.nodeEnv === 'development' }), {
            pid: process.pid,
          }),
          // A scrape of any worker answers for all of them (cluster.ts).
          workerMetrics: workerMetricsLink(),
        }
      : {},
  );
  let url: string;
  try {
    ({ url } = await app.start());
  } catch (error) {
    await app.stop().catch(() => undefined); // the database is open: close it cleanly
    throw error;
  }
  if (worker) {
    await tellPrimary({ ovation: 'ready', url, instanceId: app.instanceId });
  } else {
    const pubsub = config.redisUrl ? 'Redis' : config.redisCluster ? 'Redis Cluster (sharded)' : 'in-process';
    const db = config.databaseUrl ? 'PostgreSQL' : `embedded PGlite in ${config.dataDir}`;
    app.logger.info(`Ovation ready: database ${db}, pubsub ${pubsub}`);
    printBanner(url, config);
  }

  let signals = 0;
  const stop = (why: string): void => {
    signals += 1;
    if (signals > 1) process.exit(1); // a second Ctrl-C means now
    app.logger.info(`${why}: shutting down`);
    setTimeout(() => {
      app.logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + DRAIN_AFTER_CUT_MS).unref();
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        app.logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', (signal) => stop(`${signal} received`));
  if (worker) {
    // The primary is gone (killed): nothing hands this worker connections any more.
    process.on('disconnect', () => stop('primary gone'));
  } else {
    process.on('SIGINT', (signal) => stop(`${signal} received`));
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  if (config.workers > 1 && cluster.isPrimary) {
    await runPrimary({
      config,
      logger: createLogger({ level: config.logLevel, pretty: config.nodeEnv === 'development' }),
      workerHardExitMs: config.shutdownTimeoutMs + DRAIN_AFTER_CUT_MS,
      onReady: (url) => printBanner(url, config),
    });
    return;
  }
  await serve(config);
}

main().catch(async (error: unknown) => {
  if (error instanceof StartupError) {
    // A worker's primary prints it, once for all of them.
    if (cluster.isWorker) await tellPrimary({ ovation: 'startup-error', message: error.message });
    else process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(
      `Ovation failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
  process.exit(1);
});
