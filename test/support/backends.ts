/**
 * The storage/pubsub combinations integration tests run against: the embedded default (PGlite,
 * in-process pubsub) and real PostgreSQL + Redis processes started for the test file.
 */
import { createTestDatabase, startPostgres } from './postgres.js';
import { startRedis } from './redis.js';

export interface Backend {
  name: string;
  /** Starts what the backend needs; returns the env for loadConfig and a cleanup. */
  start(): Promise<{ env: Record<string, string>; stop(): Promise<void> }>;
}

export const embedded: Backend = {
  name: 'PGlite + in-process pubsub',
  start: async () => ({ env: {}, stop: async () => undefined }),
};

export const postgresRedis: Backend = {
  name: 'PostgreSQL + Redis',
  async start() {
    const [postgres, redis] = await Promise.all([startPostgres(), startRedis()]);
    const databaseUrl = await createTestDatabase(postgres.url);
    return {
      env: { DATABASE_URL: databaseUrl, REDIS_URL: redis.url },
      async stop() {
        await Promise.all([postgres.stop(), redis.stop()]);
      },
    };
  },
};

export const backends = [embedded, postgresRedis];
