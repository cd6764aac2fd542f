/**
 * Two server processes sharing one real PostgreSQL and one real Redis: what scaling out looks
 * like, for end-to-end files that check cross-instance behaviour.
 */
import { freshDatabase } from './backends.js';
import { startRedis } from './redis.js';
import { startServerProcess, type ServerProcess } from './server-process.js';

export interface Cluster {
  a: ServerProcess;
  b: ServerProcess;
  databaseUrl: string;
  redisUrl: string;
  /** The env both instances run with (start a third one with it). */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startCluster(extraEnv: Record<string, string> = {}): Promise<Cluster> {
  // An empty database (on the tier's shared server when there is one): the instances migrate it.
  const [database, redis] = await Promise.all([freshDatabase({ migrated: false }), startRedis()]);
  const stopInfra = async (): Promise<void> => void (await Promise.all([database.drop(), redis.stop()]));
  try {
    const databaseUrl = database.url;
    const env = { DATABASE_URL: databaseUrl, REDIS_URL: redis.url, ...extraEnv };
    // Both start at once: migrations must be applied exactly once.
    const [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
    return {
      a,
      b,
      databaseUrl,
      redisUrl: redis.url,
      env,
      async stop() {
        await Promise.all([a.stop(), b.stop()]);
        await stopInfra();
      },
    };
  } catch (error) {
    await stopInfra();
    throw error;
  }
}
