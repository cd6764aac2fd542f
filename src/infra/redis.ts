/**
 * Redis connections for the cross-instance pubsub: publishing and subscribing need separate
 * connections (a subscribed connection accepts no other commands but PING).
 */
import { Redis } from 'ioredis';
import type { Logger } from './logger.js';

export interface RedisConnections {
  publisher: Redis;
  subscriber: Redis;
  /** Resolves once both connections answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export async function connectRedis(url: string, log: Logger): Promise<RedisConnections> {
  const make = (role: string): Redis => {
    const client = new Redis(url, {
      connectionName: `ovation:${role}`,
      lazyConnect: true,
      // Commands wait for a reconnect rather than failing at the first blip.
      maxRetriesPerRequest: 20,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    });
    client.on('error', (error: Error) => log.warn(`redis ${role} connection error`, { error: error.message }));
    return client;
  };
  const publisher = make('publisher');
  const subscriber = make('subscriber');
  try {
    await Promise.all([publisher.connect(), subscriber.connect()]);
  } catch (error) {
    publisher.disconnect();
    subscriber.disconnect();
    throw new Error(`Cannot connect to REDIS_URL: ${(error as Error).message}`, { cause: error });
  }
  return {
    publisher,
    subscriber,
    async ping() {
      await Promise.all([publisher.ping(), subscriber.ping()]);
    },
    async close() {
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
    },
  };
}
