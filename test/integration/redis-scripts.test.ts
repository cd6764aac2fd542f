/**
 * The one Redis script helper (src/infra/redis-scripts.ts) on a real Redis: scripts run singly
 * and in a pipeline, and keep running after SCRIPT FLUSH, which is what a restart or a failover
 * does to the script cache while the client keeps (or reopens) its connection. A client that
 * loads a script once and then only sends EVALSHA fails there with NOSCRIPT. On a three-master
 * Redis Cluster too: a batch of calls spans the masters (a single pipeline there would be refused).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySlot, pipelines } from '../../src/infra/redis.js';
import { bindScripts, defineScript } from '../../src/infra/redis-scripts.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { sharedRedisCluster, type RedisClusterServer } from '../support/redis-cluster.js';

/** KEYS[1] counter. ARGV[1] increment, ARGV[2] a tag. Returns {counter after, tag}. */
const ADD = defineScript<[number, string]>({
  name: 'testAdd',
  keys: 1,
  lua: `return {redis.call('INCRBY', KEYS[1], ARGV[1]), ARGV[2]}`,
});

/** KEYS[1..n] counters, each incremented. Returns n. */
const TOUCH = defineScript<number>({
  name: 'testTouch',
  keys: 'dynamic',
  lua: `for i = 1, #KEYS do redis.call('INCR', KEYS[i]) end
return #KEYS`,
});

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

describe('Redis scripts', () => {
  let server: RedisServer;
  let redis: Redis;
  let n = 0;
  /** A key no other test touches. */
  const key = () => `scripts:${++n}`;

  beforeAll(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    await redis?.quit();
    await server?.stop();
  });

  it('runs a script singly and many calls in one pipeline, replies in call order', async () => {
    const scripts = bindScripts(redis, { add: ADD, touch: TOUCH });
    const [a, b] = [key(), key()];
    expect(await scripts.add([a], [5, 'one'])).toEqual([5, 'one']);
    expect(
      await scripts.add.many([
        { keys: [a], args: [2, 'x'] },
        { keys: [b], args: [1, 'y'] },
        { keys: [a], args: [3, 'z'] },
      ]),
    ).toEqual([
      [7, 'x'],
      [1, 'y'],
      [10, 'z'],
    ]);
    expect(await scripts.touch([a, b, key()], [])).toBe(3);
    expect(await scripts.add.many([])).toEqual([]);
    // A pipeline is not a transaction: a failing call fails the batch, the others still ran.
    await expect(
      scripts.add.many([
        { keys: [b], args: [1, 'ran'] },
        { keys: [a], args: ['not a number', 'fails'] },
      ]),
    ).rejects.toThrow(/not an integer/);
    expect(await redis.mget(a, b)).toEqual(['11', '3']);
  });

  it('keeps working after SCRIPT FLUSH, singly and in a pipeline, where a bare EVALSHA fails', async () => {
    const { add } = bindScripts(redis, { add: ADD });
    const counter = key();
    expect(await add([counter], [1, 'before'])).toEqual([1, 'before']);
    expect(await redis.script('EXISTS', sha1(ADD.lua))).toEqual([1]);

    await redis.script('FLUSH');
    await expect(redis.evalsha(sha1(ADD.lua), 1, counter, 1, 'bare')).rejects.toThrow(/NOSCRIPT/);
    expect(await add([counter], [1, 'single'])).toEqual([2, 'single']);
    expect(await redis.script('EXISTS', sha1(ADD.lua))).toEqual([1]);

    await redis.script('FLUSH');
    const replies = await add.many(Array.from({ length: 5 }, (_, i) => ({ keys: [counter], args: [1, `p${i}`] })));
    expect(replies).toEqual([3, 4, 5, 6, 7].map((count, i) => [count, `p${i}`]));
    // Each call ran once: nothing was lost or run twice by the reload.
    expect(await redis.get(counter)).toBe('7');
    expect(await add([counter], [1, 'after'])).toEqual([8, 'after']);
  });

  it('registers a script once per connection and refuses names that would replace another command', async () => {
    const other = new Redis(server.url);
    try {
      const counter = key();
      // Two stores on one connection share the registration; another connection has its own.
      const first = bindScripts(redis, { add: ADD });
      const second = bindScripts(redis, { add: ADD });
      const elsewhere = bindScripts(other, { add: ADD });
      await Promise.all([
        first.add([counter], [1, 'a']),
        second.add([counter], [1, 'b']),
        elsewhere.add([counter], [1, 'c']),
      ]);
      expect(await redis.get(counter)).toBe('3');

      const clash = defineScript({ name: ADD.name, keys: 1, lua: `return 0` });
      expect(() => bindScripts(redis, { clash })).toThrow(/another script of that name/);
      const builtin = defineScript({ name: 'get', keys: 1, lua: `return 0` });
      expect(() => bindScripts(redis, { builtin })).toThrow(/already has a command of that name/);
      expect(await redis.get(counter)).toBe('3'); // GET is still GET
      expect(() => defineScript({ name: 'not-a-name', keys: 0, lua: `return 0` })).toThrow(/letters and digits/);
    } finally {
      other.disconnect();
    }
  });

  it('refuses a call with another number of keys than the script declares, before sending it', async () => {
    const { add } = bindScripts(redis, { add: ADD });
    const [a, b] = [key(), key()];
    await expect(add([a, b], [1, 'two keys'])).rejects.toThrow('Redis script testAdd takes 1 keys, got 2');
    await expect(
      add.many([
        { keys: [a], args: [1, 'ok'] },
        { keys: [], args: [1, 'none'] },
      ]),
    ).rejects.toThrow('takes 1 keys, got 0');
    expect(await redis.exists(a, b)).toBe(0);
  });
});

describe('Redis scripts on a Redis Cluster', () => {
  let cluster: RedisClusterServer;
  let redis: Cluster;
  let n = 0;
  /** Keys spread over the slots (no hash tag), so over the three masters. */
  const key = () => `cluster-scripts:${++n}:${randomUUID()}`;

  beforeAll(async () => {
    cluster = await sharedRedisCluster();
    redis = new Cluster(cluster.nodes);
    await redis.ping(); // answered once the slot map is loaded
  });
  afterAll(async () => {
    await redis?.quit();
  });

  it('runs many calls on keys of every master, replies in call order, and a script on keys sharing a hash tag', async () => {
    const scripts = bindScripts(redis, { add: ADD, touch: TOUCH });
    const keys = Array.from({ length: 12 }, key);
    const nodes = new Set(keys.map((k) => redis.slots[keySlot(k)]![0]));
    expect(nodes.size).toBe(3); // the batch really spans the three masters
    const replies = await scripts.add.many(keys.map((k, i) => ({ keys: [k], args: [i + 1, `k${i}`] })));
    expect(replies).toEqual(keys.map((_, i) => [i + 1, `k${i}`]));
    expect(await scripts.add.many(keys.map((k) => ({ keys: [k], args: [1, 'again'] })))).toEqual(
      keys.map((_, i) => [i + 2, 'again']),
    );

    const tag = `{${randomUUID()}}`;
    expect(await scripts.touch([`${tag}:a`, `${tag}:b`, `${tag}:c`], [])).toBe(3);
    // The rule every store follows: a script's keys in one slot, or the cluster refuses it.
    await expect(scripts.touch([key(), key(), key(), key()], [])).rejects.toThrow(/CROSSSLOT|same slot/);
  });

  it('keeps working after SCRIPT FLUSH on every master, singly and in pipelines', async () => {
    const { add } = bindScripts(redis, { add: ADD });
    const keys = Array.from({ length: 6 }, key);
    await add.many(keys.map((k) => ({ keys: [k], args: [1, 'before'] })));
    await Promise.all(redis.nodes('master').map((node) => node.script('FLUSH')));
    expect(await add([keys[0]!], [1, 'single'])).toEqual([2, 'single']);
    await Promise.all(redis.nodes('master').map((node) => node.script('FLUSH')));
    expect(await add.many(keys.map((k) => ({ keys: [k], args: [1, 'after'] })))).toEqual(
      keys.map((_, i) => [i === 0 ? 3 : 2, 'after']),
    );
  });

  it('pipelines: groups on several masters come back in group order, a failing command rejects', async () => {
    const keys = Array.from({ length: 9 }, key);
    const replies = await pipelines(
      redis,
      keys.map((k, i) => ({ key: k, queue: (pipeline) => void pipeline.set(k, i).get(k) })),
    );
    expect(replies).toEqual(keys.flatMap((_, i) => ['OK', String(i)]));
    await expect(
      pipelines(redis, [
        { key: keys[0]!, queue: (pipeline) => void pipeline.get(keys[0]!) },
        { key: keys[1]!, queue: (pipeline) => void pipeline.hget(keys[1]!, 'field') }, // a string: WRONGTYPE
      ]),
    ).rejects.toThrow(/WRONGTYPE/);
  });
});
