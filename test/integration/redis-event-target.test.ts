/**
 * The bus's Redis event target against a real Redis: a PUBLISH that fails is reported, not thrown
 * (the process lives on), and retried with backoff, so the event still reaches subscribers once
 * Redis takes it again: a topic's last event does not wait for a next one to be filled in.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBusRedisEventTarget } from '../../src/realtime/redis-event-target.js';
import { startRedis, type RedisServer } from '../support/redis.js';

let redis: RedisServer;
const clients: Redis[] = [];
const connect = (options: { username?: string; password?: string } = {}) => {
  const client = new Redis(redis.url, { ...options, maxRetriesPerRequest: 1, lazyConnect: false });
  clients.push(client);
  return client;
};

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await redis?.stop();
});

it('reports a failed publish and delivers the event once Redis accepts it again', async () => {
  const admin = connect();
  // A publisher whose user may not PUBLISH, until the test allows it again.
  await admin.call('ACL', 'SETUSER', 'bus-publisher', 'on', '>secret', '~*', '&*', '+@all', '-publish');
  const errors: { topic: string; willRetry: boolean }[] = [];
  const target = createBusRedisEventTarget({
    publisher: connect({ username: 'bus-publisher', password: 'secret' }),
    subscriber: connect(),
    onPublishError: (_error, topic, willRetry) => errors.push({ topic, willRetry }),
  });
  const received = new Promise<unknown>((resolve) =>
    target.addEventListener('offers:s1', (event) => resolve((event as CustomEvent).detail)),
  );
  await new Promise((resolve) => setTimeout(resolve, 100)); // the SUBSCRIBE is live
  target.dispatchEvent(new CustomEvent('offers:s1', { detail: { seq: 7 } }));
  await expect.poll(() => errors.length).toBeGreaterThanOrEqual(1);
  expect(errors[0]).toEqual({ topic: 'offers:s1', willRetry: true });
  await admin.call('ACL', 'SETUSER', 'bus-publisher', '+publish');
  expect(await received).toEqual({ seq: 7 });
});

it('handles a failed SUBSCRIBE (no unhandled rejection: the process would exit) and subscribes again once Redis is ready', async () => {
  const admin = connect();
  // A subscriber whose user may not SUBSCRIBE, as when Redis stays away past the client's retries.
  await admin.call('ACL', 'SETUSER', 'bus-subscriber', 'on', '>secret', '~*', '&*', '+@all', '-subscribe');
  const failures: string[] = [];
  const subscriber = connect({ username: 'bus-subscriber', password: 'secret' });
  const target = createBusRedisEventTarget({
    publisher: connect(),
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
});
