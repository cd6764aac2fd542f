/**
 * The guards while Redis is away (issue 15; policy in src/infra/redis-fallback.ts, figures in
 * RELIABILITY.md): the rate limiter and the fraud checks of the stores that app.ts wires with
 * REDIS_URL fail open with this instance's local state, at once (not after ioredis's ~30 s of
 * reconnect retries), still enforcing the limits locally, and use the shared state again once
 * Redis is back on the same address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { FraudObservation } from '../../src/guards/fraud/fraud.store.js';
import { createLogger } from '../../src/infra/logger.js';
import { connectRedis, type RedisConnections } from '../../src/infra/redis.js';
import { createStores, type Stores } from '../../src/stores.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const limit = { windowMs: 60_000, max: 3 };
const escalation = { blockBaseMs: 0, blockMaxMs: 0, strikeTtlMs: 60_000 };
const lines: string[] = [];

let server: RedisServer;
let redis: RedisConnections;
let stores: Stores;

beforeAll(async () => {
  server = await startRedis();
  const logger = createLogger({ level: 'warn', write: (line) => lines.push(line) });
  redis = await connectRedis({ url: server.url }, logger);
  stores = createStores({ redis, config: loadConfig({ NODE_ENV: 'test' }), instanceId: 'outage-test', logger });
});
afterAll(async () => {
  await stores?.close();
  await redis?.close();
  await server?.stop();
});

/** Resolves with `promise`'s value and how long it took; rejects if it takes longer than `ms`. */
async function timed<T>(ms: number, promise: Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const value = await Promise.race([
    promise,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
  return { value, ms: Date.now() - started };
}

const observation = (i: number): FraudObservation => ({
  kind: 'vote',
  at: Date.now(),
  id: `obs-${i}`,
  userId: 'fraud-user',
  scopeId: 'competition-1',
  ip: '203.0.113.9',
  deviceId: null,
  instantAccount: false,
  quickAccount: false,
  ballot: 'b',
  target: 't',
  adjustable: false,
});

describe('guards while Redis is away', () => {
  it('rate limits: shared while Redis answers, local limits at once while it is down, shared again after', async () => {
    // Up: the decision is Redis's (a second "instance" on the same Redis would share it).
    for (let i = 0; i < 3; i += 1)
      expect((await stores.rateLimit.hit('user:u|votes', limit, escalation)).admitted).toBe(true);
    expect((await stores.rateLimit.hit('user:u|votes', limit, escalation)).admitted).toBe(false);
    const port = server.port;
    await server.stop();

    // Down: every call answers at once, from the local state, which still enforces the limit.
    const down = await Promise.all(
      Array.from({ length: 5 }, () => timed(1_500, stores.rateLimit.hit('user:v|votes', limit, escalation))),
    );
    expect(down.map((d) => d.value.admitted)).toEqual([true, true, true, false, false]);
    expect(down.find((d) => !d.value.admitted)?.value.retryAfterMs).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes('rate limits and fraud checks use this instance’s local state'))).toBe(true);

    // Fraud windows too: observe and claim answer locally, and count what this instance saw.
    const first = await timed(1_500, stores.fraud.observe(observation(1)));
    const second = await timed(1_500, stores.fraud.observe(observation(2)));
    expect([first.value.userActions60s, second.value.userActions60s]).toEqual([1, 2]);
    expect((await timed(1_500, stores.fraud.claim('alert-1', 60_000, Date.now()))).value).toBe(true);
    expect((await timed(1_500, stores.fraud.claim('alert-1', 60_000, Date.now()))).value).toBe(false);

    // Back on the same address: shared state again (a fresh Redis: `w` starts with a full budget there).
    server = await startRedis({ getPort: async () => port, portAttempts: 1 });
    await redis.ping();
    expect((await stores.rateLimit.hit('user:w|votes', limit, escalation)).admitted).toBe(true);
    const client = redis.publisher;
    expect((await client.keys('*')).length).toBeGreaterThan(0);
    expect(lines.some((l) => l.includes('rate limits and fraud checks use the shared state'))).toBe(true);
  });
});
