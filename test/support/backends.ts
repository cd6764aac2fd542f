/**
 * The storage/pubsub combinations integration tests run against: the embedded default (PGlite,
 * in-process pubsub) and real PostgreSQL + Redis; the Redis-centred files also PostgreSQL + a
 * Redis Cluster.
 *
 * PostgreSQL is the run's shared server (test/support/shared-servers.ts, the integration tier's
 * globalSetup) with a fresh migrated database per start; a tier without that setup gets a server
 * of its own per start, as before. Redis is a server of our own per start: it starts in
 * milliseconds and keeps pub/sub apart from files running at the same time.
 */
import { Cluster, Redis } from 'ioredis';
import { createTestDatabase, dropTestDatabase, migrateDatabase, startPostgres } from './postgres.js';
import { startRedis } from './redis.js';
import { provided } from './provided.js';
import { sharedRedisCluster } from './redis-cluster.js';

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
    const [database, redis] = await Promise.all([freshDatabase(), startRedis()]);
    return {
      env: { DATABASE_URL: database.url, REDIS_URL: redis.url },
      async stop() {
        await Promise.all([database.drop(), redis.stop()]);
      },
    };
  },
};

export const backends = [embedded, postgresRedis];

/**
 * PostgreSQL and a three-master Redis Cluster (REDIS_CLUSTER_NODES): the test process's shared
 * cluster (test/support/redis-cluster.ts), emptied at each start. Only the files whose subject
 * keeps state in Redis or runs on its pub/sub run on it too (`withCluster`), so the tier's wall
 * time grows by those files alone.
 */
export const postgresRedisCluster: Backend = {
  name: 'PostgreSQL + Redis Cluster',
  async start() {
    const [database, cluster] = await Promise.all([freshDatabase(), sharedRedisCluster()]);
    await cluster.flush();
    return {
      env: { DATABASE_URL: database.url, REDIS_CLUSTER_NODES: cluster.seeds },
      stop: () => database.drop(),
    };
  },
};

export const withCluster = [...backends, postgresRedisCluster];

/** A command connection to the backend's Redis, one server or the cluster (the caller disconnects it). */
export function redisFor(env: Record<string, string>): Redis | Cluster {
  const seeds = env['REDIS_CLUSTER_NODES'];
  if (seeds !== undefined) {
    return new Cluster(
      seeds.split(',').map((seed) => {
        const [host, port] = seed.split(':');
        return { host: host!, port: Number(port) };
      }),
    );
  }
  const url = env['REDIS_URL'];
  if (url === undefined) throw new Error('redisFor: the backend has no Redis');
  return new Redis(url);
}

export interface TestDatabase {
  url: string;
  /** Drops the database (or stops its own server). Call after every app on it has stopped. */
  drop(): Promise<void>;
}

/**
 * A fresh database, with every migration applied unless `migrated` is false: on the shared server
 * when the tier provides one (a copy of its migrated template, or an empty database; fast),
 * otherwise on a PostgreSQL server of its own (initdb + start, slow). Apps still run their
 * migrations on a migrated one at start-up, and find nothing left to apply.
 */
export async function freshDatabase({ migrated = true }: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const sharedUrl = provided('sharedPostgresUrl');
  const template = provided('sharedPostgresTemplate');
  if (sharedUrl && template) {
    const url = await createTestDatabase(sharedUrl, migrated ? { template } : {});
    return { url, drop: () => dropTestDatabase(url) };
  }
  const server = await startPostgres();
  try {
    const url = await createTestDatabase(server.url);
    if (migrated) await migrateDatabase(url);
    return { url, drop: () => server.stop() };
  } catch (err) {
    await server.stop();
    throw err;
  }
}
