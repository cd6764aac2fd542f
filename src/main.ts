/** Process entry: loadConfig() → createApp() → start(); SIGTERM/SIGINT → stop() within 10 s. */
import { ConfigError, loadConfig } from './config.js';
import { createApp } from './app.js';

const HARD_EXIT_MS = 10_000;

async function main(): Promise<void> {
  const config = loadConfig();
  const app = await createApp(config);
  const { url } = await app.start();
  const pubsub = config.redisUrl ? 'Redis' : 'in-process';
  const db = config.databaseUrl ? 'PostgreSQL' : `embedded PGlite in ${config.dataDir}`;
  app.logger.info(`Ovation ready: database ${db}, pubsub ${pubsub}`);
  process.stdout.write(
    [
      '',
      `  GraphiQL        ${url}/graphql`,
      `  graphql-ws      ${url.replace(/^http/, 'ws')}/graphql`,
      `  graphql-sse     ${url}/graphql/stream`,
      `  Get a token     npm run token -- --sub alice --name Alice --role ADMIN`,
      `                  then send it as "Authorization: Bearer <token>" (GraphiQL: Headers tab)`,
      '',
    ].join('\n') + '\n',
  );

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
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
  } else {
    process.stderr.write(`Ovation failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  }
  process.exit(1);
});
