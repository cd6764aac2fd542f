/**
 * The bus's Redis event target against a real Redis and a three-master Redis Cluster (sharded
 * pub/sub there): a subscription is live once barrier() resolves, events on topics of every shard
 * reach every instance's subscribers, and a PUBLISH that fails is reported, not thrown (the
 * process lives on), and retried with backoff, so the event still reaches subscribers once Redis
 * takes it again: a topic's last event does not wait for a next one to be filled in.
 */
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pubsubOf, type RedisClient } from '../../src/infra/redis.js';
import { createBusRedisEventTarget } from '../../src/realtime/redis-event-target.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { sharedRedisCluster } from '../support/redis-cluster.js';

interface Setup {
  /** The servers (one, or the cluster's three masters). */
  servers: RedisServer[];
  connect(options?: { username?: string; password?: string }): RedisClient;
  stop(): Promise<void>;
}

const setups: { name: string; start(): Promise<Setup> }[] = [
  {
    name: 'one Redis (PUBLISH/SUBSCRIBE)',
    async start() {
      const server = await startRedis();
      return {
        servers: [server],
        connect: (options = {}) => new Redis(server.url, { ...options, maxRetriesPerRequest: 1 }),
        stop: () => server.stop(),
      };
    },
  },
  {
    name: 'a Redis Cluster (SPUBLISH/SSUBSCRIBE)',
    async start() {
      const cluster = await sharedRedisCluster();
      await cluster.flush();
      return {
        servers: cluster.servers,
        connect: (options = {}) =>
          new Cluster(cluster.nodes, {
            shardedSubscribers: true,
            redisOptions: { ...options, maxRetriesPerRequest: 1 },
          }),
        stop: async () => undefined, // shared by the file's process
      };
    },
  },
];

describe.each(setups)('bus event target on $name', (setup) => {
  let env: Setup;
  const clients: RedisClient[] = [];
  const connect: Setup['connect'] = (options) => {
    const client = env.connect(options);
    clients.push(client);
    return client;
  };
  const target = (options: { publisherUser?: { username: string; password: string } } = {}) => {
    const errors: { topic: string; willRetry: boolean }[] = [];
    const subscriber = connect();
    const pubsub = pubsubOf({ publisher: connect(options.publisherUser), subscriber });
    const bus = createBusRedisEventTarget({
      pubsub,
      // One server: the library subscribes on it (src/stores.ts passes it the same way).
      ...(subscriber instanceof Redis && { subscriber }),
      onPublishError: (_error, topic, willRetry) => errors.push({ topic, willRetry }),
    });
    return { bus, pubsub, errors };
  };
  const next = (bus: EventTarget, topic: string) =>
    new Promise<unknown>((resolve) => {
      const listener = (event: Event) => {
        bus.removeEventListener(topic, listener);
        resolve((event as CustomEvent).detail);
      };
      bus.addEventListener(topic, listener);
    });

  beforeAll(async () => {
    env = await setup.start();
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await env?.stop();
  });

  it('delivers every topic to every instance once barrier() resolved, and nothing after the last listener left', async () => {
    const [a, b] = [target(), target()];
    // Topics whose channels hash to slots all over the cluster.
    const topics = Array.from({ length: 12 }, () => `offers:${randomUUID()}`);
    const received = topics.map((topic) => Promise.all([next(a.bus, topic), next(b.bus, topic)]));
    await Promise.all([a.bus.barrier(), b.bus.barrier()]);
    // Both instances counted on each topic's shard (the notification audience's question).
    expect(await a.pubsub.subscribers(topics)).toEqual(topics.map(() => 2));
    for (const [i, topic] of topics.entries()) a.bus.dispatchEvent(new CustomEvent(topic, { detail: { seq: i } }));
    expect(await Promise.all(received)).toEqual(topics.map((_, i) => [{ seq: i }, { seq: i }]));

    // Every listener gone: the instances unsubscribed, so a publish reaches nobody.
    await expect.poll(async () => (await a.pubsub.subscribers(topics)).every((n) => n === 0)).toBe(true);
    expect(a.pubsub.mode).toBe(setup.name.includes('Cluster') ? 'sharded' : 'classic');
  });

  it('reports a failed publish and delivers the event once Redis accepts it again', async () => {
    const admin = env.servers.map((server) => new Redis(server.url));
    const acl = (...rules: string[]) =>
      Promise.all(admin.map((client) => client.call('ACL', 'SETUSER', 'bus-publisher', ...rules)));
    try {
      // A publisher whose user may not publish (ACLs are per node), until the test allows it again.
      await acl('on', '>secret', '~*', '&*', '+@all', '-publish', '-spublish');
      const publisher = target({ publisherUser: { username: 'bus-publisher', password: 'secret' } });
      const subscriber = target();
      const topic = `offers:${randomUUID()}`;
      const received = next(subscriber.bus, topic);
      await subscriber.bus.barrier();
      publisher.bus.dispatchEvent(new CustomEvent(topic, { detail: { seq: 7 } }));
      await expect.poll(() => publisher.errors.length).toBeGreaterThanOrEqual(1);
      expect(publisher.errors[0]).toEqual({ topic, willRetry: true });
      await acl('+publish', '+spublish');
      expect(await received).toEqual({ seq: 7 });
    } finally {
      for (const client of admin) client.disconnect();
    }
  });

  it.skipIf(setup.name.includes('Cluster'))(
    'handles a failed SUBSCRIBE (no unhandled rejection: the process would exit) and subscribes again once Redis is ready',
    async () => {
      const admin = connect();
      // A subscriber whose user may not SUBSCRIBE, as when Redis stays away past the client's retries.
      await admin.call('ACL', 'SETUSER', 'bus-subscriber', 'on', '>secret', '~*', '&*', '+@all', '-subscribe');
      const failures: string[] = [];
      const subscriber = connect({ username: 'bus-subscriber', password: 'secret' }) as Redis;
      const target = createBusRedisEventTarget({
        pubsub: pubsubOf({ publisher: connect(), subscriber }),
        subscriber,
        onPublishError: () => undefined,
        onSubscribeError: (_error, topic) => failures.push(topic),
      });
      const received = new Promise<unknown>((resolve) =>
        target.addEventListener('tally:c1', (event) => resolve((event as CustomEvent).detail)),
      );
      await expect.poll(() => failures).toEqual(['tally:c1']);

      // Allowed again, and the connection is back (a reconnect is when ioredis is `ready` again).
      await admin.call('ACL', 'SETUSER', 'bus-subscriber', '+subscribe');
      subscriber.disconnect(true);
      await expect
        .poll(async () => (await admin.call('PUBSUB', 'NUMSUB', 'tally:c1')) as unknown[])
        .toEqual(['tally:c1', 1]);
      target.dispatchEvent(new CustomEvent('tally:c1', { detail: { seq: 1 } }));
      expect(await received).toEqual({ seq: 1 });
    },
  );
});
