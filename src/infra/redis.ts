/**
 * Redis connections: one server (REDIS_URL) or a Redis Cluster (REDIS_CLUSTER_NODES), behind one
 * factory. Commands and scripts go through `publisher`, a `Redis` or an ioredis `Cluster` (which
 * routes each command to the node holding its key's slot); subscriptions through `subscriber`, a
 * separate connection (a subscribed connection accepts no other commands but PING).
 *
 * Cluster rules every store follows (RELIABILITY.md, "Redis Cluster"): the keys one script or one
 * MULTI touches share a hash tag `{…}` (one slot); a pipeline holds one slot's commands
 * (`pipelines` below sends one per group on a cluster); no KEYS/SCAN; topics travel on sharded
 * pub/sub (`pubsubOf`).
 */
import { Cluster, Redis, type ChainableCommander } from 'ioredis';
import type { RedisClusterConfig } from '../config.js';
import type { Logger } from './logger.js';

/** A command connection: one server, or a cluster that routes by key slot. */
export type RedisClient = Redis | Cluster;

/** One server (REDIS_URL) or a cluster's seed nodes (REDIS_CLUSTER_NODES). */
export type RedisTarget = { url: string } | { cluster: RedisClusterConfig };

/**
 * How topics travel. `classic`: PUBLISH/SUBSCRIBE, one server (any Redis version, and every
 * managed or proxied Redis). `sharded`: SPUBLISH/SSUBSCRIBE (Redis ≥ 7), a cluster: each topic
 * lives on the shard that owns its channel's slot, so its traffic crosses no cluster bus and
 * subscribers connect to that shard only (classic PUBLISH on a cluster is broadcast to every node).
 */
export type PubSubMode = 'classic' | 'sharded';

export interface RedisConnections {
  publisher: RedisClient;
  subscriber: RedisClient;
  pubsub: RedisPubSub;
  /** Resolves once both connections answer. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

// Commands wait for a reconnect rather than failing at the first blip.
const COMMAND_OPTIONS = {
  maxRetriesPerRequest: 20,
  retryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000),
};

export async function connectRedis(target: RedisTarget, log: Logger): Promise<RedisConnections> {
  const make = (role: 'publisher' | 'subscriber'): RedisClient => {
    const connectionName = `ovation:${role}`;
    const client =
      'url' in target
        ? new Redis(target.url, { connectionName, lazyConnect: true, ...COMMAND_OPTIONS })
        : new Cluster(target.cluster.nodes, {
            lazyConnect: true,
            // SSUBSCRIBE goes to a connection per master, on the shard that owns the channel.
            shardedSubscribers: role === 'subscriber',
            clusterRetryStrategy: COMMAND_OPTIONS.retryStrategy,
            redisOptions: {
              connectionName,
              ...COMMAND_OPTIONS,
              ...(target.cluster.username !== undefined && { username: target.cluster.username }),
              ...(target.cluster.password !== undefined && { password: target.cluster.password }),
              ...(target.cluster.tls && { tls: {} }),
            },
          });
    client.on('error', (error: Error) => log.warn(`redis ${role} connection error`, { error: error.message }));
    return client;
  };
  const publisher = make('publisher');
  const subscriber = make('subscriber');
  const variable = 'url' in target ? 'REDIS_URL' : 'REDIS_CLUSTER_NODES';
  try {
    await Promise.all([publisher.connect(), subscriber.connect()]);
  } catch (error) {
    publisher.disconnect();
    subscriber.disconnect();
    throw new Error(`Cannot connect to ${variable}: ${(error as Error).message}`, { cause: error });
  }
  return {
    publisher,
    subscriber,
    pubsub: pubsubOf({ publisher, subscriber }),
    async ping() {
      await Promise.all([publisher.ping(), subscriber.ping()]);
    },
    async close() {
      await Promise.allSettled([publisher.quit(), subscriber.quit()]);
    },
  };
}

export const isCluster = (redis: RedisClient): redis is Cluster => redis instanceof Cluster;

/**
 * Pub/sub over a publisher and a subscriber connection, in the mode their kind calls for
 * (a cluster: sharded; one server: classic). Every channel is subscribed on its own, so the
 * one-slot-per-SSUBSCRIBE rule always holds.
 */
export interface RedisPubSub {
  readonly mode: PubSubMode;
  /** Resolves with how many subscribers received it (on the channel's shard when sharded). */
  publish(channel: string, message: string): Promise<number>;
  /** Resolves once the server has acknowledged the subscription. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Every message on the subscriber connection (other listeners' channels too); returns `off`. */
  onMessage(listener: (channel: string, message: string) => void): () => void;
  /**
   * Subscribers per channel, as NUMSUB counts them: on a cluster, asked of each channel's shard.
   * Missing channels count 0.
   */
  subscribers(channels: readonly string[]): Promise<number[]>;
}

export function pubsubOf(deps: { publisher: RedisClient; subscriber: RedisClient }): RedisPubSub {
  const { publisher, subscriber } = deps;
  if (!isCluster(publisher)) {
    return {
      mode: 'classic',
      publish: (channel, message) => publisher.publish(channel, message),
      subscribe: async (channel) => void (await subscriber.subscribe(channel)),
      unsubscribe: async (channel) => void (await subscriber.unsubscribe(channel)),
      onMessage(listener) {
        subscriber.on('message', listener);
        return () => void subscriber.off('message', listener);
      },
      async subscribers(channels) {
        if (channels.length === 0) return [];
        const reply = (await publisher.call('PUBSUB', 'NUMSUB', ...channels)) as (string | number)[];
        return channels.map((_, i) => Number(reply[2 * i + 1] ?? 0));
      },
    };
  }
  return {
    mode: 'sharded',
    publish: async (channel, message) => Number(await publisher.spublish(channel, message)),
    subscribe: async (channel) => void (await subscriber.ssubscribe(channel)),
    unsubscribe: async (channel) => void (await subscriber.sunsubscribe(channel)),
    onMessage(listener) {
      subscriber.on('smessage', listener);
      return () => void subscriber.off('smessage', listener);
    },
    async subscribers(channels) {
      // SHARDNUMSUB answers for the node asked, so each channel is asked of its shard's master.
      return Promise.all(
        channels.map(async (channel) => {
          const reply = (await nodeOf(publisher, channel).call('PUBSUB', 'SHARDNUMSUB', channel)) as (
            string | number
          )[];
          return Number(reply[1] ?? 0);
        }),
      );
    },
  };
}

/** The master connection that holds `key`'s slot (the cluster's last known slot map). */
function nodeOf(cluster: Cluster, key: string): Redis {
  const slot = keySlot(key);
  const owner = cluster.slots[slot]?.[0];
  const node = cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
  if (!node) throw new Error(`Redis Cluster: no known master for slot ${slot} (key ${key})`);
  return node;
}

/** Commands on the keys of one slot: `key` is one of them (its hash tag names the slot). */
export interface PipelineGroup {
  key: string;
  queue(pipeline: ChainableCommander): void;
}

/**
 * Commands in groups, each group's keys in one slot (the same hash tag): one pipeline for them
 * all on one server (one round trip); on a cluster, one pipeline per master node, sent at once (a
 * pipeline's commands must go to one node there). Replies in group order, flattened; rejects
 * with the first command's error.
 */
export async function pipelines(redis: RedisClient, groups: readonly PipelineGroup[]): Promise<unknown[]> {
  /** One pipeline: each group's replies, in its order. */
  const run = async (batch: readonly PipelineGroup[]): Promise<unknown[][]> => {
    if (batch.length === 0) return [];
    const pipeline = redis.pipeline();
    const ends = batch.map((group) => {
      group.queue(pipeline);
      return pipeline.length;
    });
    const values = ((await pipeline.exec()) ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    });
    return ends.map((end, i) => values.slice(i === 0 ? 0 : ends[i - 1], end));
  };
  if (!isCluster(redis)) return (await run(groups)).flat();
  // A Cluster closed for good (disconnect(), quit()) holds a pipeline forever where one server
  // rejects it: reject the same way.
  if (redis.status === 'end' || redis.status === 'close') throw new Error('Connection is closed.');
  // By the node that owns each group's slot in the last known slot map (a stale map costs a
  // MOVED, which ioredis follows).
  const byNode = new Map<string, number[]>();
  for (const [index, group] of groups.entries()) {
    const slot = keySlot(group.key);
    const node = redis.slots[slot]?.[0] ?? `slot:${slot}`;
    const indexes = byNode.get(node);
    if (indexes) indexes.push(index);
    else byNode.set(node, [index]);
  }
  const perGroup: unknown[][] = [];
  await Promise.all(
    [...byNode.values()].map(async (indexes) => {
      const replies = await run(indexes.map((index) => groups[index]!));
      for (const [i, index] of indexes.entries()) perGroup[index] = replies[i]!;
    }),
  );
  return perGroup.flat();
}

/** Redis Cluster's hash slot of a key: CRC16 (XMODEM) of its hash tag, or of the whole key, mod 16384. */
export function keySlot(key: string): number {
  const bytes = Buffer.from(key);
  const open = bytes.indexOf(0x7b); // '{'
  let tagged = bytes;
  if (open !== -1) {
    const close = bytes.indexOf(0x7d, open + 1); // '}'
    if (close > open + 1) tagged = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of tagged) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
