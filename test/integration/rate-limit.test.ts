/**
 * Rate limits across instances: two apps on one PostgreSQL and one Redis count every call in one
 * atomic Redis script, so a burst split over both admits exactly the limit. Escalation, the
 * subscription token bucket and the live-subscription counter against real Redis; subscription
 * starts with the product's defaults (a page opens its subscriptions at once, a reconnect storm
 * is refused) on every transport, in memory and on Redis; anonymous callers by IP, with and
 * without TRUST_PROXY (one app each, stores in memory).
 */
import { createClient as createSseClient } from 'graphql-sse';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  MeDocument,
  OpenCompetitionDocument,
  TallyUpdatedDocument,
} from '../generated/graphql.js';
import { createRedisLiveSubscriptionCounter, createRedisRateLimitStore } from '../../src/guards/rate-limit.redis.js';
import type { Escalation } from '../../src/guards/rate-limit.js';
import type { RedisClient } from '../../src/infra/redis.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { freshDatabase, type TestDatabase } from '../support/backends.js';
import { subscribe, type Feed } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { rawSocket, type RawSocket } from '../support/raw-ws.js';
import { startRedis, type RedisServer } from '../support/redis.js';
import { sharedRedisCluster } from '../support/redis-cluster.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const databases: TestDatabase[] = [];
/** A fresh migrated PostgreSQL database for this file, dropped after it. */
const databaseUrl = async (): Promise<string> => {
  const database = await freshDatabase();
  databases.push(database);
  return database.url;
};
let redisServer: RedisServer;
let a: TestApp;
let b: TestApp;
const clients: Redis[] = [];
const redis = (): Redis => {
  const client = new Redis(redisServer.url);
  clients.push(client);
  return client;
};

beforeAll(async () => {
  redisServer = await startRedis();
  const env = {
    DATABASE_URL: await databaseUrl(),
    REDIS_URL: redisServer.url,
    FRAUD_DETECTION_ENABLED: 'false', // one user voting 100 times at once is the point here
    RATE_LIMIT_VOTES_PER_MINUTE: '30',
    RATE_LIMIT_QUERIES_PER_MINUTE: '25',
    RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE: '1000',
    MAX_SUBSCRIPTIONS_PER_USER: '2',
  };
  a = await startTestApp(env);
  b = await startTestApp(env);
});
afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  for (const client of clients) client.disconnect();
  await Promise.allSettled([...databases.map((d) => d.drop()), redisServer?.stop()]);
});

async function approvalCompetition(graphqlUrl: string) {
  const admin = await tokenFor({ sub: 'rl-admin', role: 'ADMIN' });
  const { createCompetition } = dataOf(
    await execute(
      fetch,
      graphqlUrl,
      CreateCompetitionDocument,
      { input: { title: 'Rate limits', votingMethod: 'APPROVAL' } },
      admin,
    ),
  );
  const { createSubmission } = dataOf(
    await execute(
      fetch,
      graphqlUrl,
      CreateSubmissionDocument,
      { input: { competitionId: createCompetition.id, title: 'S0' } },
      admin,
    ),
  );
  dataOf(await execute(fetch, graphqlUrl, OpenCompetitionDocument, { id: createCompetition.id }, admin));
  return { competitionId: createCompetition.id, submissionId: createSubmission.id };
}

describe('two instances, one Redis', () => {
  it('admits exactly 30 of 100 concurrent votes by one user split over both instances', async () => {
    const { competitionId, submissionId } = await approvalCompetition(a.graphqlUrl);
    const voter = await tokenFor({ sub: 'burst-voter' });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        execute(
          fetch,
          (i % 2 === 0 ? a : b).graphqlUrl,
          CastVoteDocument,
          { input: { competitionId, approvals: [submissionId], idempotencyKey: `k${i}` } },
          voter,
        ),
      ),
    );
    const limited = results.filter((r) => r.errors?.[0]?.extensions?.['code'] === 'RATE_LIMITED');
    const passed = results.filter((r) => r.data?.castVote);
    expect(passed).toHaveLength(30);
    expect(limited).toHaveLength(70);
    for (const r of limited) {
      const extensions = r.errors![0]!.extensions;
      expect(extensions['retryable']).toBe(true);
      expect(extensions['retryAfterMs']).toBeGreaterThan(0);
      expect(extensions['retryAfterMs']).toBeLessThanOrEqual(60_000);
      expect(extensions).toMatchObject({ rule: 'votes', limit: 30, windowMs: 60_000 });
    }
    // Both instances refused some: the count is shared, not per instance.
    expect(new Set(limited.map((r) => results.indexOf(r) % 2))).toEqual(new Set([0, 1]));
    // Another user still has a full budget.
    const other = await execute(
      fetch,
      b.graphqlUrl,
      CastVoteDocument,
      { input: { competitionId, approvals: [submissionId] } },
      await tokenFor({ sub: 'calm-voter' }),
    );
    expect(other.errors).toBeUndefined();
  });

  it('counts every query field without a rule of its own against the queries rule: 25 of 40 concurrent `me`, both instances', async () => {
    const reader = await tokenFor({ sub: 'query-reader' });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => execute(fetch, (i % 2 === 0 ? a : b).graphqlUrl, MeDocument, {}, reader)),
    );
    const limited = results.filter((r) => r.errors?.[0]?.extensions?.['code'] === 'RATE_LIMITED');
    expect(results.filter((r) => r.data?.me)).toHaveLength(25);
    expect(limited).toHaveLength(15);
    for (const r of limited)
      expect(r.errors![0]!.extensions).toMatchObject({ rule: 'queries', limit: 25, windowMs: 60_000 });
    // Another user's budget is untouched.
    expect(
      (await execute(fetch, a.graphqlUrl, MeDocument, {}, await tokenFor({ sub: 'other-reader' }))).errors,
    ).toBeUndefined();
  });

  it('counts live subscriptions per user across instances and frees the slot when one ends', async () => {
    const { competitionId } = await approvalCompetition(a.graphqlUrl);
    const token = await tokenFor({ sub: 'watcher' });
    const feeds: Feed<unknown>[] = [];
    const watch = (app: TestApp, as: string | null = token) => {
      const feed = subscribe('graphql-ws', app.url, TallyUpdatedDocument, { competitionId }, as ?? undefined);
      feeds.push(feed);
      return feed;
    };
    try {
      const first = watch(a);
      const second = watch(b);
      await Promise.all([first, second].map((f) => f.waitFor((r) => r.data?.tallyUpdated != null)));
      const third = watch(b);
      const refused = await third.waitFor((r) => r.errors !== undefined);
      expect(refused.errors?.[0]?.extensions).toMatchObject({
        code: 'RATE_LIMITED',
        retryable: true,
        rule: 'concurrentSubscriptions',
        limit: 2,
      });
      expect(refused.errors?.[0]?.extensions?.['retryAfterMs']).toBeGreaterThan(0);
      // Anonymous watchers are counted per IP, not against this user.
      const anonymous = watch(a, null);
      await anonymous.waitFor((r) => r.data?.tallyUpdated != null);

      await first.close();
      let admitted = false;
      for (let attempt = 0; attempt < 50 && !admitted; attempt += 1) {
        const retry = watch(b);
        const result = await retry.waitFor(() => true);
        admitted = result.data?.tallyUpdated != null;
        if (!admitted) await sleep(100);
      }
      expect(admitted).toBe(true);
    } finally {
      await Promise.all(feeds.map((f) => f.close()));
    }
  });
});

type Message = Record<string, unknown>;
type Extensions = Record<string, unknown> | undefined;
const extensionsOf = (payload: unknown): Extensions =>
  (payload as { errors?: { extensions?: Record<string, unknown> }[] } | undefined)?.errors?.[0]?.extensions;

/** Opens a graphql-ws connection and sends `count` subscribe messages at once; resolves with each operation's first message. */
async function openOnOneSocket(
  wsUrl: string,
  token: string,
  count: number,
  query: string,
): Promise<{ ws: RawSocket; firsts: Message[] }> {
  const ws = rawSocket(wsUrl);
  ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
  await ws.next((m) => m['type'] === 'connection_ack');
  const ids = Array.from({ length: count }, (_, i) => `op${i}`);
  for (const id of ids) ws.send(JSON.stringify({ type: 'subscribe', id, payload: { query } }));
  const firsts = new Map<string, Message>();
  // Operations answer in any order: scan everything received whenever a message arrives.
  await ws.next(() => {
    for (const m of ws.messages) if (typeof m['id'] === 'string' && !firsts.has(m['id'])) firsts.set(m['id'], m);
    return firsts.size === count;
  }, 30_000);
  return { ws, firsts: ids.map((id) => firsts.get(id)!) };
}

describe.each([
  { backend: 'in memory', redis: false },
  { backend: 'on Redis', redis: true },
])('subscription starts $backend, with the product defaults', ({ redis: onRedis }) => {
  const PAGE = 100; // MAX_SUBSCRIPTIONS_PER_CONNECTION's default: what one page may open on one connection
  let app: TestApp;
  let competitionId: string;
  const tally = () => `subscription { tallyUpdated(competitionId: "${competitionId}") { seq } }`;
  beforeAll(async () => {
    const backend = onRedis ? { DATABASE_URL: await databaseUrl(), REDIS_URL: redisServer.url } : {};
    // Undefined: the defaults, which test/support/limits.ts raises for every other test.
    app = await startTestApp(
      {
        ...backend,
        RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE: undefined,
        RATE_LIMIT_SUBSCRIPTIONS_BURST: undefined,
        MAX_SUBSCRIPTIONS_PER_USER: undefined,
      },
      { postgres: true }, // in memory: no REDIS_URL
    );
    ({ competitionId } = await approvalCompetition(app.graphqlUrl));
  });
  afterAll(async () => {
    await app?.stop();
  });

  it(`graphql-ws: a page opens ${PAGE} subscriptions on one connection at once; every one is live`, async () => {
    const { ws, firsts } = await openOnOneSocket(
      app.wsUrl,
      await tokenFor({ sub: `page-ws-${onRedis}` }),
      PAGE,
      tally(),
    );
    try {
      expect(firsts.map((m) => extensionsOf(m['payload'])?.['code'] ?? m['type'])).toEqual(Array(PAGE).fill('next'));
      expect(
        firsts.every((m) => (m['payload'] as { data?: { tallyUpdated?: unknown } }).data?.tallyUpdated != null),
      ).toBe(true);
    } finally {
      ws.close();
    }
  });

  it(`graphql-sse single connection: ${PAGE} operations on one stream at once; every one is live`, async () => {
    const token = await tokenFor({ sub: `page-graphql-sse-${onRedis}` });
    const client = createSseClient({
      url: `${app.url}/graphql/stream`,
      singleConnection: true,
      retryAttempts: 0,
      headers: { authorization: `Bearer ${token}` },
    });
    const iterators = Array.from({ length: PAGE }, () => client.iterate<{ tallyUpdated: unknown }>({ query: tally() }));
    try {
      const firsts = await Promise.all(iterators.map(async (it) => (await it.next()).value));
      expect(firsts.map((r) => extensionsOf(r)?.['code'] ?? (r?.data?.tallyUpdated ? 'live' : 'nothing'))).toEqual(
        Array(PAGE).fill('live'),
      );
    } finally {
      await Promise.all(iterators.map(async (it) => it.return?.()));
      client.dispose();
    }
  });

  it(`SSE (distinct connections): ${PAGE} streams at once; every one is live`, async () => {
    const token = await tokenFor({ sub: `page-sse-${onRedis}` });
    const feeds = Array.from({ length: PAGE }, () =>
      subscribe('sse', app.url, TallyUpdatedDocument, { competitionId }, token),
    );
    try {
      const firsts = await Promise.all(feeds.map((f) => f.waitFor(() => true, 30_000)));
      expect(firsts.map((r) => extensionsOf(r)?.['code'] ?? (r.data?.tallyUpdated ? 'live' : 'nothing'))).toEqual(
        Array(PAGE).fill('live'),
      );
    } finally {
      await Promise.all(feeds.map((f) => f.close()));
    }
  });

  it('a reconnect storm (reconnecting in a loop, re-opening every subscription) is refused with RATE_LIMITED and retryAfterMs', async () => {
    const token = await tokenFor({ sub: `storm-${onRedis}` });
    // A competition that does not exist: an admitted start answers NOT_FOUND and holds no live
    // slot, so only the start rate decides (not MAX_SUBSCRIPTIONS_PER_USER, whose slots a closed
    // socket frees asynchronously).
    const query = 'subscription { tallyUpdated(competitionId: "gone") { seq } }';
    const started = Date.now();
    const rounds: (string | undefined)[][] = [];
    let refusal: Extensions;
    for (let round = 0; round < 5 && refusal === undefined; round += 1) {
      const { ws, firsts } = await openOnOneSocket(app.wsUrl, token, PAGE, query);
      ws.close();
      const codes = firsts.map((m) => extensionsOf(m['payload'])?.['code'] as string | undefined);
      rounds.push(codes);
      refusal = firsts.map((m) => extensionsOf(m['payload'])).find((e) => e?.['code'] === 'RATE_LIMITED');
    }
    const admitted = rounds.flat().filter((code) => code === 'NOT_FOUND').length;
    // The page and one full reconnect pass (burst 2 × 100); the third round is refused.
    expect(rounds.slice(0, 2).map((codes) => codes.filter((c) => c === 'NOT_FOUND').length)).toEqual([PAGE, PAGE]);
    expect(rounds).toHaveLength(3);
    expect(refusal).toMatchObject({
      code: 'RATE_LIMITED',
      retryable: true,
      rule: 'subscriptions',
      limit: 60,
      windowMs: 60_000,
      burst: 200,
    });
    expect(refusal?.['retryAfterMs']).toBeGreaterThan(0);
    // Beyond the burst only the refill (1 a second) got through, until the first refusal blocked the rest.
    expect(admitted).toBeLessThanOrEqual(2 * PAGE + Math.ceil((Date.now() - started) / 1_000) + 1);
    expect(rounds[2]!.filter((c) => c === 'RATE_LIMITED').length).toBeGreaterThan(PAGE / 2);
  });
});

describe.each([
  { name: 'one Redis', cluster: false },
  { name: 'a Redis Cluster', cluster: true },
])('Redis store on $name', ({ cluster }) => {
  let connect: () => RedisClient = redis;
  beforeAll(async () => {
    if (!cluster) return;
    const shared = await sharedRedisCluster();
    await shared.flush();
    connect = () => {
      const client = new Cluster(shared.nodes);
      clusterClients.push(client);
      return client;
    };
  });
  afterAll(() => {
    for (const client of clusterClients) client.disconnect();
  });
  const clusterClients: Cluster[] = [];
  it('is exact across connections: 1000 concurrent hits from two "instances" against 300', async () => {
    const one = createRedisRateLimitStore({ redis: connect(), instanceId: 'one' });
    const two = createRedisRateLimitStore({ redis: connect(), instanceId: 'two' });
    const none: Escalation = { blockBaseMs: 0, blockMaxMs: 0, strikeTtlMs: 60_000 };
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => (i % 2 ? one : two).hit('exact', { windowMs: 60_000, max: 300 }, none)),
    );
    expect(results.filter((r) => r.admitted)).toHaveLength(300);
    expect(results.filter((r) => !r.admitted && r.retryAfterMs > 0)).toHaveLength(700);
  });

  it('escalates: each new episode blocks twice as long, capped; blocked calls add no strike', async () => {
    const store = createRedisRateLimitStore({ redis: connect(), instanceId: 'esc' });
    // The window (250 ms) is shorter than the first block (300 ms), so each episode starts with a fresh window;
    // three calls in 250 ms hold even on a loaded machine.
    const limit = { windowMs: 250, max: 2 };
    const escalation: Escalation = { blockBaseMs: 300, blockMaxMs: 1_200, strikeTtlMs: 60_000 };
    const blocks: number[] = [];
    for (let episode = 1; episode <= 4; episode += 1) {
      expect((await store.hit('esc', limit, escalation)).admitted).toBe(true);
      expect((await store.hit('esc', limit, escalation)).admitted).toBe(true);
      const refused = await store.hit('esc', limit, escalation);
      expect(refused).toMatchObject({ admitted: false, strikes: episode });
      blocks.push(refused.retryAfterMs);
      const during = await store.hit('esc', limit, escalation);
      expect(during).toMatchObject({ admitted: false, strikes: episode });
      expect(during.retryAfterMs).toBeLessThanOrEqual(refused.retryAfterMs);
      await sleep(refused.retryAfterMs + 20);
    }
    expect(blocks).toEqual([300, 600, 1_200, 1_200]);
  });

  it('window only (no block): retryAfter is when the oldest call leaves the window', async () => {
    const store = createRedisRateLimitStore({ redis: connect(), instanceId: 'win' });
    const none: Escalation = { blockBaseMs: 0, blockMaxMs: 0, strikeTtlMs: 60_000 };
    await store.hit('win', { windowMs: 1_000, max: 1 }, none);
    const refused = await store.hit('win', { windowMs: 1_000, max: 1 }, none);
    expect(refused.admitted).toBe(false);
    expect(refused.retryAfterMs).toBeGreaterThan(900);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1_000);
  });

  it('token bucket: exact across connections, 1000 concurrent hits from two "instances" against a burst of 300', async () => {
    const one = createRedisRateLimitStore({ redis: connect(), instanceId: 'one' });
    const two = createRedisRateLimitStore({ redis: connect(), instanceId: 'two' });
    const none: Escalation = { blockBaseMs: 0, blockMaxMs: 0, strikeTtlMs: 60_000 };
    const limit = { windowMs: 3_600_000, max: 1, burst: 300 }; // no token comes back during the test
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => (i % 2 ? one : two).hit('exact-bucket', limit, none)),
    );
    expect(results.filter((r) => r.admitted)).toHaveLength(300);
    expect(
      results
        .filter((r) => r.admitted)
        .map((r) => r.remaining)
        .sort((x, y) => x - y),
    ).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(results.filter((r) => !r.admitted && r.retryAfterMs > 3_000_000)).toHaveLength(700);
  });

  it('token bucket: a token back every window / max, never more than the burst; refusals escalate like the log', async () => {
    const store = createRedisRateLimitStore({ redis: connect(), instanceId: 'bucket' });
    const limit = { windowMs: 1_000, max: 5, burst: 3 }; // a token every 200 ms
    const none: Escalation = { blockBaseMs: 0, blockMaxMs: 0, strikeTtlMs: 60_000 };
    const remaining = [];
    for (let i = 0; i < 3; i += 1) remaining.push((await store.hit('bucket', limit, none)).remaining);
    expect(remaining).toEqual([2, 1, 0]);
    const refused = await store.hit('bucket', limit, none);
    expect(refused).toMatchObject({ admitted: false, strikes: 1, struck: true });
    expect(refused.retryAfterMs).toBeGreaterThan(100);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(200);
    await sleep(refused.retryAfterMs + 5);
    expect(await store.hit('bucket', limit, none)).toMatchObject({ admitted: true, remaining: 0 });
    await sleep(1_000); // 5 tokens' worth; the bucket holds 3
    for (let i = 0; i < 3; i += 1) expect((await store.hit('bucket', limit, none)).admitted).toBe(true);
    const escalation: Escalation = { blockBaseMs: 500, blockMaxMs: 500, strikeTtlMs: 60_000 };
    expect(await store.hit('bucket', limit, escalation)).toMatchObject({
      admitted: false,
      retryAfterMs: 500,
      strikes: 2,
    });
    const during = await store.hit('bucket', limit, escalation);
    expect(during).toMatchObject({ admitted: false, strikes: 2, struck: false }); // blocked: no new strike
    expect(during.retryAfterMs).toBeLessThanOrEqual(500);
  });

  it('live subscriptions: shared max across instances; a dead instance stops counting after its TTL', async () => {
    const deadConnection = connect();
    const dying = createRedisLiveSubscriptionCounter({ redis: deadConnection, instanceId: 'dying', ttlMs: 300 });
    const alive = createRedisLiveSubscriptionCounter({ redis: connect(), instanceId: 'alive', ttlMs: 300 });
    try {
      expect((await dying.acquire('user:x', 2)).admitted).toBe(true);
      const slot = await alive.acquire('user:x', 2);
      expect(slot.admitted).toBe(true);
      expect(await alive.acquire('user:x', 2)).toMatchObject({ admitted: false, current: 2 });
      if (slot.admitted) slot.release();
      await sleep(50);
      expect((await alive.acquire('user:x', 2)).admitted).toBe(true);

      deadConnection.disconnect(); // the instance dies without releasing: no heartbeat any more
      expect((await alive.acquire('user:x', 2)).admitted).toBe(false);
      await sleep(450);
      expect((await alive.acquire('user:x', 2)).admitted).toBe(true);
    } finally {
      await alive.close();
      await dying.close().catch(() => undefined);
    }
  });
});

describe.each([
  { trustProxy: 'false', sharedBucket: true, transport: 'sse' },
  { trustProxy: 'true', sharedBucket: false, transport: 'sse' },
  { trustProxy: 'false', sharedBucket: true, transport: 'graphql-ws' },
  { trustProxy: 'true', sharedBucket: false, transport: 'graphql-ws' },
])('anonymous callers by IP over $transport, TRUST_PROXY=$trustProxy', ({ trustProxy, sharedBucket, transport }) => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(
      {
        TRUST_PROXY: trustProxy,
        RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE: '2',
        RATE_LIMIT_SUBSCRIPTIONS_BURST: '2',
        RATE_LIMIT_SUBSCRIPTIONS_IP_BURST: '2',
        MAX_SUBSCRIPTIONS_PER_CONNECTION: '2',
        RATE_LIMIT_IP_FACTOR: '1',
      },
      { postgres: true },
    );
  });
  afterAll(async () => {
    await app?.stop();
  });

  /** One SSE subscription attempt (the competition does not exist: NOT_FOUND when admitted), its first error code. */
  async function attempt(forwardedFor: string): Promise<unknown> {
    const response = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { accept: 'text/event-stream', 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
      body: JSON.stringify({ query: 'subscription { tallyUpdated(competitionId: "nope") { seq } }' }),
    });
    const text = await response.text();
    const data = /^data: (.*)$/m.exec(text)?.[1];
    return (JSON.parse(data!) as { errors?: { extensions?: Record<string, unknown> }[] }).errors?.[0]?.extensions?.[
      'code'
    ];
  }

  /** The same over graphql-ws, on a connection of its own whose upgrade request carries the header. */
  async function wsAttempt(forwardedFor: string): Promise<unknown> {
    const ws = rawSocket(app.wsUrl, 'graphql-transport-ws', { 'x-forwarded-for': forwardedFor });
    try {
      ws.send(JSON.stringify({ type: 'connection_init' }));
      await ws.next((m) => m['type'] === 'connection_ack');
      ws.send(
        JSON.stringify({
          id: '1',
          type: 'subscribe',
          payload: { query: 'subscription { tallyUpdated(competitionId: "nope") { seq } }' },
        }),
      );
      const next = await ws.next((m) => m['type'] === 'next');
      return (next['payload'] as { errors?: { extensions?: Record<string, unknown> }[] }).errors?.[0]?.extensions?.[
        'code'
      ];
    } finally {
      ws.close();
    }
  }

  it(
    sharedBucket
      ? 'ignores X-Forwarded-For: every caller is the socket peer'
      : 'counts each X-Forwarded-For client separately',
    async () => {
      const send = transport === 'sse' ? attempt : wsAttempt;
      expect(await send('198.51.100.1')).toBe('NOT_FOUND');
      expect(await send('198.51.100.1')).toBe('NOT_FOUND');
      expect(await send('198.51.100.1')).toBe('RATE_LIMITED');
      // A client cannot pick its own IP: only the entry our proxy appended (the last) counts.
      expect(await send('203.0.113.66, 198.51.100.1')).toBe('RATE_LIMITED');
      expect(await send('198.51.100.2')).toBe(sharedBucket ? 'RATE_LIMITED' : 'NOT_FOUND');
    },
  );
});
