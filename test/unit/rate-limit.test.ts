import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { AppError } from '../../src/errors.js';
import type { Caller } from '../../src/guards/guards.js';
import {
  blockDurationMs,
  callerIdentity,
  createRateLimiter,
  escalationFromConfig,
  ipIdentity,
  parseWindow,
  rateRulesFromConfig,
  type Escalation,
  type RateLimitOptions,
} from '../../src/guards/rate-limit.js';
import { createMemoryLiveSubscriptionCounter, createMemoryRateLimitStore } from '../../src/guards/rate-limit.memory.js';
import { Role } from '../../src/generated/prisma/enums.js';
import { clientIpOf } from '../../src/transport/http.js';

const user = (id: string): Caller => ({
  viewer: { id, name: id, role: Role.AUDIENCE },
  clientIp: '10.0.0.1',
  deviceId: null,
});
const anonymous = (ip: string): Caller => ({ viewer: null, clientIp: ip, deviceId: null });
const NO_BLOCK: Escalation = { blockBaseMs: 0, blockMaxMs: 0, strikeTtlMs: 3_600_000 };

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe('rule configuration (graphql-rate-limit shape)', () => {
  it.each([
    ['1m', 60_000],
    ['30s', 30_000],
    ['500ms', 500],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    [250, 250],
    [undefined, 60_000],
  ])('parseWindow(%j) = %i ms', (window, ms) => {
    expect(parseWindow(window)).toBe(ms);
  });

  it.each(['', 'soon', '-1m', '0', '1 week', 0, -5, Number.NaN])('parseWindow(%j) refuses', (window) => {
    expect(() => parseWindow(window)).toThrow(/invalid rate limit window/);
  });

  it('builds the contract rules and the extra ones from config, with their defaults', () => {
    const config = loadConfig({});
    expect(rateRulesFromConfig(config.rateLimit)).toEqual({
      votes: { window: '1m', max: 10 },
      reactions: { window: '1m', max: 30 },
      messages: { window: '1m', max: 30 },
      typing: { window: '1m', max: 60 },
      presence: { window: '1m', max: 30 },
      polls: { window: '1m', max: 600 },
      queries: { window: '1m', max: 1200 },
      pledges: { window: '1m', max: 30 },
      subscriptions: { window: '1m', max: 60, burst: 200, ipBurst: 20_000 },
      mutations: { window: '1m', max: 120 },
    });
    expect(escalationFromConfig(config.rateLimit)).toEqual({
      blockBaseMs: 60_000,
      blockMaxMs: 960_000,
      strikeTtlMs: 3_600_000,
    });
    expect(config.rateLimit).toMatchObject({
      subscriptionsBurst: 200,
      subscriptionsIpBurst: 20_000,
      maxSubscriptionsPerUser: 100,
      maxSubscriptionsPerIp: 20_000,
      ipFactor: 20,
    });
    expect(config.limits).toEqual({
      maxQueryDepth: 12,
      maxQueryComplexity: 5000,
      maxQueryTokens: 5000,
      maxRequestBodyBytes: 1_048_576,
      maxBatchSize: 10,
      wsMaxMessageBytes: 1_048_576,
      wsConnectionInitTimeoutMs: 3000,
    });
  });

  it('reads every limit variable', () => {
    const config = loadConfig({
      RATE_LIMIT_VOTES_PER_MINUTE: '3',
      RATE_LIMIT_TYPING_PER_MINUTE: '7',
      RATE_LIMIT_PRESENCE_PER_MINUTE: '8',
      RATE_LIMIT_PLEDGES_PER_MINUTE: '6',
      RATE_LIMIT_MUTATIONS_PER_MINUTE: '9',
      RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE: '11',
      RATE_LIMIT_SUBSCRIPTIONS_BURST: '150',
      MAX_SUBSCRIPTIONS_PER_USER: '12',
      MAX_SUBSCRIPTIONS_PER_IP: '500',
      RATE_LIMIT_SUBSCRIPTIONS_IP_BURST: '400',
      RATE_LIMIT_IP_FACTOR: '2',
      RATE_LIMIT_BLOCK_BASE_MS: '1000',
      RATE_LIMIT_BLOCK_MAX_MS: '8000',
      RATE_LIMIT_STRIKE_TTL_MS: '60000',
      MAX_QUERY_DEPTH: '5',
      MAX_QUERY_COMPLEXITY: '100',
      MAX_QUERY_TOKENS: '1000',
      MAX_REQUEST_BODY_BYTES: '4096',
      MAX_BATCH_SIZE: '3',
      WS_MAX_MESSAGE_BYTES: '2048',
      WS_CONNECTION_INIT_TIMEOUT_MS: '500',
    });
    expect(config.rateLimit).toMatchObject({
      votesPerMinute: 3,
      typingPerMinute: 7,
      presencePerMinute: 8,
      pledgesPerMinute: 6,
      mutationsPerMinute: 9,
      subscriptionsPerMinute: 11,
      subscriptionsBurst: 150,
      maxSubscriptionsPerUser: 12,
      maxSubscriptionsPerIp: 500,
      subscriptionsIpBurst: 400,
      ipFactor: 2,
      blockBaseMs: 1000,
      blockMaxMs: 8000,
      strikeTtlMs: 60_000,
    });
    expect(config.limits).toEqual({
      maxQueryDepth: 5,
      maxQueryComplexity: 100,
      maxQueryTokens: 1000,
      maxRequestBodyBytes: 4096,
      maxBatchSize: 3,
      wsMaxMessageBytes: 2048,
      wsConnectionInitTimeoutMs: 500,
    });
  });

  it.each([
    ['RATE_LIMIT_TYPING_PER_MINUTE', '0'],
    ['MAX_SUBSCRIPTIONS_PER_USER', 'many'],
    ['MAX_SUBSCRIPTIONS_PER_IP', '0'],
    ['RATE_LIMIT_SUBSCRIPTIONS_IP_BURST', '0'],
    ['RATE_LIMIT_IP_FACTOR', '0'],
    ['MAX_QUERY_DEPTH', '0'],
    ['MAX_REQUEST_BODY_BYTES', '10'],
    ['WS_CONNECTION_INIT_TIMEOUT_MS', '1e3'],
  ])('%s=%s fails naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it('sizes the subscription burst for a page: 2 × MAX_SUBSCRIPTIONS_PER_CONNECTION by default, never less than it', () => {
    expect(loadConfig({ MAX_SUBSCRIPTIONS_PER_CONNECTION: '300' }).rateLimit.subscriptionsBurst).toBe(600);
    expect(loadConfig({ RATE_LIMIT_SUBSCRIPTIONS_BURST: '100' }).rateLimit.subscriptionsBurst).toBe(100);
    expect(() => loadConfig({ RATE_LIMIT_SUBSCRIPTIONS_BURST: '99' })).toThrow(
      'RATE_LIMIT_SUBSCRIPTIONS_BURST must be at least MAX_SUBSCRIPTIONS_PER_CONNECTION (100), got 99',
    );
    expect(() => loadConfig({ RATE_LIMIT_SUBSCRIPTIONS_BURST: '50', MAX_SUBSCRIPTIONS_PER_CONNECTION: '60' })).toThrow(
      'RATE_LIMIT_SUBSCRIPTIONS_BURST',
    );
  });
});

describe('escalation', () => {
  const escalation = { blockBaseMs: 60_000, blockMaxMs: 960_000 };
  it.each([
    [0, 0],
    [1, 60_000],
    [2, 120_000],
    [3, 240_000],
    [4, 480_000],
    [5, 960_000],
    [6, 960_000],
    [1_000, 960_000],
  ])('strike %i blocks %i ms (1 min doubling, capped at 16 min)', (strikes, ms) => {
    expect(blockDurationMs(strikes, escalation)).toBe(ms);
  });

  it('never blocks with a zero base', () => {
    expect(blockDurationMs(3, { blockBaseMs: 0, blockMaxMs: 960_000 })).toBe(0);
  });
});

describe('identity', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2:ffff::1', '2001:db8:1:2::/64'],
    ['2001:0db8:0001:0002::9', '2001:db8:1:2::/64'],
    ['::1', '0:0:0:0::/64'],
    ['[2001:db8::1]', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    ['not-an-ip', 'not-an-ip'],
    ['x'.repeat(500), 'x'.repeat(64)],
    ['', 'unknown'],
  ])('ipIdentity(%j) = %j', (ip, identity) => {
    expect(ipIdentity(ip)).toBe(identity);
  });

  it.each([
    ['127.0.0.1', undefined, false, '127.0.0.1'],
    ['::ffff:127.0.0.1', '203.0.113.9', false, '127.0.0.1'],
    ['127.0.0.1', '203.0.113.9', true, '203.0.113.9'],
    // the client may send its own X-Forwarded-For: only the entry our proxy appended counts
    ['127.0.0.1', '6.6.6.6, 203.0.113.9', true, '203.0.113.9'],
    ['127.0.0.1', ' ', true, '127.0.0.1'],
    [undefined, undefined, false, 'unknown'],
  ])('clientIpOf(peer %j, X-Forwarded-For %j, TRUST_PROXY %s) = %j', (peer, forwarded, trust, ip) => {
    expect(clientIpOf(peer, forwarded, trust)).toBe(ip);
  });

  it('counts signed-in callers by user, anonymous ones by IP', () => {
    expect(callerIdentity(user('u1'))).toEqual({ id: 'user:u1', anonymous: false });
    expect(callerIdentity(anonymous('198.51.100.4'))).toEqual({ id: 'ip:198.51.100.4', anonymous: true });
  });
});

describe('memory store: sliding log with escalating blocks', () => {
  it('admits max calls per window, then frees one slot as each call ages out', async () => {
    const c = clock();
    const store = createMemoryRateLimitStore({ now: c.now });
    const limit = { windowMs: 1_000, max: 3 };
    const hit = () => store.hit('k', limit, NO_BLOCK);
    expect(await hit()).toMatchObject({ admitted: true, remaining: 2 });
    c.advance(100);
    expect(await hit()).toMatchObject({ admitted: true, remaining: 1 });
    c.advance(100);
    expect(await hit()).toMatchObject({ admitted: true, remaining: 0 });
    c.advance(100);
    // The first call (at 0) leaves the window at 1000: 700 ms from now.
    expect(await hit()).toEqual({ admitted: false, remaining: 0, retryAfterMs: 700, strikes: 1, struck: true });
    c.advance(700);
    expect(await hit()).toMatchObject({ admitted: true, remaining: 0 });
    expect(await hit()).toMatchObject({ admitted: false, retryAfterMs: 100 });
    await store.close();
  });

  it('blocks for base × 2^(strikes − 1), adds no strike during a block, and forgets strikes', async () => {
    const c = clock();
    const store = createMemoryRateLimitStore({ now: c.now });
    const limit = { windowMs: 100, max: 1 };
    const escalation: Escalation = { blockBaseMs: 1_000, blockMaxMs: 3_000, strikeTtlMs: 60_000 };
    const hit = () => store.hit('k', limit, escalation);

    const blocks: number[] = [];
    for (let episode = 0; episode < 4; episode += 1) {
      expect(await hit()).toMatchObject({ admitted: true });
      const refused = await hit();
      expect(refused.admitted).toBe(false);
      expect(refused.strikes).toBe(episode + 1);
      blocks.push(refused.retryAfterMs);
      c.advance(refused.retryAfterMs - 1);
      // Still blocked: refused with the time left, no new strike, nothing counted.
      expect(await hit()).toEqual({
        admitted: false,
        remaining: 0,
        retryAfterMs: 1,
        strikes: episode + 1,
        struck: false,
      });
      c.advance(1);
    }
    expect(blocks).toEqual([1_000, 2_000, 3_000, 3_000]);

    c.advance(60_000); // strikes forgotten
    expect(await hit()).toMatchObject({ admitted: true });
    expect(await hit()).toMatchObject({ admitted: false, strikes: 1, retryAfterMs: 1_000 });
    await store.close();
  });

  it('retryAfter is the later of the window freeing and the block ending', async () => {
    const c = clock();
    const store = createMemoryRateLimitStore({ now: c.now });
    const escalation: Escalation = { blockBaseMs: 200, blockMaxMs: 200, strikeTtlMs: 60_000 };
    await store.hit('k', { windowMs: 5_000, max: 1 }, escalation);
    expect(await store.hit('k', { windowMs: 5_000, max: 1 }, escalation)).toMatchObject({
      admitted: false,
      retryAfterMs: 5_000,
    });
    await store.close();
  });

  it.each([
    ['a window of 30', { windowMs: 60_000, max: 30 }],
    ['a burst of 30 (token bucket)', { windowMs: 3_600_000, max: 1, burst: 30 }],
  ])('is exact under concurrency: 100 calls against %s', async (_name, limit) => {
    const store = createMemoryRateLimitStore();
    const results = await Promise.all(Array.from({ length: 100 }, () => store.hit('k', limit, NO_BLOCK)));
    expect(results.filter((r) => r.admitted)).toHaveLength(30);
    expect(results.filter((r) => !r.admitted).every((r) => r.retryAfterMs > 0)).toBe(true);
    await store.close();
  });

  it('sweeps idle entries', async () => {
    const c = clock();
    const store = createMemoryRateLimitStore({ now: c.now, sweepIntervalMs: 5 });
    await store.hit('a', { windowMs: 10, max: 1 }, NO_BLOCK);
    expect(store.size()).toBe(1);
    c.advance(11);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(store.size()).toBe(0);
    await store.close();
  });
});

describe('memory store: token bucket (rules with a burst)', () => {
  it('admits the burst at once, then one call per window / max', async () => {
    const c = clock();
    const store = createMemoryRateLimitStore({ now: c.now });
    const limit = { windowMs: 1_000, max: 4, burst: 10 }; // a token every 250 ms
    const hit = () => store.hit('k', limit, NO_BLOCK);
    for (let i = 9; i >= 0; i -= 1)
      expect(await hit()).toEqual({ admitted: true, remaining: i, retryAfterMs: 0, strikes: 0 });
    expect(await hit()).toEqual({ admitted: false, remaining: 0, retryAfterMs: 250, strikes: 1, struck: true });
    c.advance(100);
    expect(await hit()).toMatchObject({ admitted: false, retryAfterMs: 150 }); // refused calls take nothing
    c.advance(150);
    expect(await hit()).toMatchObject({ admitted: true, remaining: 0 });
    c.advance(1_000); // four tokens back
    for (let i = 3; i >= 0; i -= 1) expect(await hit()).toMatchObject({ admitted: true, remaining: i });
    expect(await hit()).toMatchObject({ admitted: false });
    c.advance(60_000); // never more than the burst
    for (let i = 0; i < 10; i += 1) expect(await hit()).toMatchObject({ admitted: true });
    expect(await hit()).toMatchObject({ admitted: false });
    await store.close();
  });

  it('refills at a fractional interval without drifting', async () => {
    const c = clock(0);
    const store = createMemoryRateLimitStore({ now: c.now });
    const limit = { windowMs: 1_000, max: 3, burst: 2 }; // a token every 333.3 ms
    expect(await store.hit('k', limit, NO_BLOCK)).toMatchObject({ admitted: true, remaining: 1 });
    expect(await store.hit('k', limit, NO_BLOCK)).toMatchObject({ admitted: true, remaining: 0 });
    expect(await store.hit('k', limit, NO_BLOCK)).toMatchObject({ admitted: false, retryAfterMs: 334 });
    const admittedAt: number[] = [];
    while (c.now() < 3_000) {
      c.advance(1);
      if ((await store.hit('k', limit, NO_BLOCK)).admitted) admittedAt.push(c.now());
    }
    expect(admittedAt).toEqual([334, 667, 1_000, 1_334, 1_667, 2_000, 2_334, 2_667, 3_000]);
    await store.close();
  });

  it('escalates like the sliding log: retryAfter is the later of the next token and the block', async () => {
    const c = clock();
    const store = createMemoryRateLimitStore({ now: c.now });
    const limit = { windowMs: 60_000, max: 60, burst: 2 };
    const escalation: Escalation = { blockBaseMs: 5_000, blockMaxMs: 8_000, strikeTtlMs: 60_000 };
    const hit = () => store.hit('k', limit, escalation);
    await hit();
    await hit();
    expect(await hit()).toEqual({ admitted: false, remaining: 0, retryAfterMs: 5_000, strikes: 1, struck: true });
    c.advance(4_999);
    expect(await hit()).toEqual({ admitted: false, remaining: 0, retryAfterMs: 1, strikes: 1, struck: false }); // blocked: no new strike
    c.advance(1);
    // Five tokens came back during the block; the bucket holds two at most.
    expect(await hit()).toMatchObject({ admitted: true, remaining: 1 });
    expect(await hit()).toMatchObject({ admitted: true, remaining: 0 });
    expect(await hit()).toMatchObject({ admitted: false, retryAfterMs: 8_000, strikes: 2 });
    await store.close();
  });

  it('sweeps a bucket once it is full again', async () => {
    const c = clock();
    const store = createMemoryRateLimitStore({ now: c.now, sweepIntervalMs: 5 });
    await store.hit('a', { windowMs: 10, max: 1, burst: 3 }, NO_BLOCK);
    c.advance(9);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(store.size()).toBe(1);
    c.advance(1);
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(store.size()).toBe(0);
    await store.close();
  });
});

describe('rate limiter (the RateGuard)', () => {
  const make = (rules: Record<string, RateLimitOptions>, ipFactor = 1) =>
    createRateLimiter({ store: createMemoryRateLimitStore(), rules, escalation: NO_BLOCK, ipFactor });

  it('throws RATE_LIMITED with retryAfterMs, the rule and the limit', async () => {
    const limiter = make({ votes: { window: '1m', max: 2 } });
    await limiter.consume('votes', user('a'));
    await limiter.consume('votes', user('a'));
    const error = await limiter.consume('votes', user('a')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({
      code: 'RATE_LIMITED',
      retryable: true,
      message: 'Too many votes requests: at most 2 per minute',
      details: { rule: 'votes', limit: 2, windowMs: 60_000 },
    });
    expect((error as AppError).details['retryAfterMs']).toBeGreaterThan(0);
    // Another user, another rule: their own budgets.
    await limiter.consume('votes', user('b'));
    await limiter.consume('reactions', user('a'));
    await limiter.close();
  });

  it('uses the rule message when it has one', async () => {
    const limiter = make({ votes: { max: 1, message: 'Slow down' } });
    await limiter.consume('votes', user('a'));
    await expect(limiter.consume('votes', user('a'))).rejects.toMatchObject({ message: 'Slow down' });
  });

  it('falls back to the mutations rule for rules without configuration, each with its own count', async () => {
    const limiter = make({ mutations: { window: '1m', max: 1 } });
    await limiter.consume('follow', user('a'));
    await limiter.consume('pledge', user('a'));
    await expect(limiter.consume('follow', user('a'))).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      details: { rule: 'follow', limit: 1 },
    });
  });

  it('counts anonymous callers per IP with ipFactor × the budget, IPv6 per /64', async () => {
    const limiter = make({ subscriptions: { max: 2 } }, 3);
    for (let i = 0; i < 6; i += 1) await limiter.consume('subscriptions', anonymous(`2001:db8:0:1::${i + 1}`));
    await expect(limiter.consume('subscriptions', anonymous('2001:db8:0:1::ff'))).rejects.toMatchObject({
      details: { limit: 6 },
    });
    await limiter.consume('subscriptions', anonymous('2001:db8:0:2::1'));
    await limiter.consume('subscriptions', anonymous('198.51.100.1'));
  });

  it('a rule with a burst admits the burst at once and says so when it refuses; anonymous callers get ipFactor × both', async () => {
    // A frozen clock: on a loaded machine real time passing between calls would refill the bucket.
    const clock = 1_000_000;
    const limiter = createRateLimiter({
      store: createMemoryRateLimitStore({ now: () => clock }),
      rules: { subscriptions: { window: '1m', max: 2, burst: 5 } },
      escalation: NO_BLOCK,
      ipFactor: 3,
    });
    for (let i = 0; i < 5; i += 1) await limiter.consume('subscriptions', user('a'));
    const error = await limiter.consume('subscriptions', user('a')).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'RATE_LIMITED',
      message: 'Too many subscriptions requests: at most 2 per minute, after a burst of 5',
      details: { rule: 'subscriptions', limit: 2, windowMs: 60_000, burst: 5, retryAfterMs: 30_000 },
    });
    for (let i = 0; i < 15; i += 1) await limiter.consume('subscriptions', anonymous('198.51.100.7'));
    await expect(limiter.consume('subscriptions', anonymous('198.51.100.7'))).rejects.toMatchObject({
      details: { limit: 6, burst: 15, retryAfterMs: 10_000 },
    });
  });

  it("an IP's bucket is sized by ipBurst and never blocks it (a venue); a user's refusal still escalates", async () => {
    const time = clock();
    const limiter = createRateLimiter({
      store: createMemoryRateLimitStore({ now: time.now }),
      rules: { subscriptions: { window: '1m', max: 60, burst: 5, ipBurst: 40 } },
      escalation: { blockBaseMs: 60_000, blockMaxMs: 960_000, strikeTtlMs: 3_600_000 },
      ipFactor: 2,
    });
    // The whole venue's reconnect passes at once: ipBurst, not burst × ipFactor (10).
    for (let i = 0; i < 40; i += 1) await limiter.consume('subscriptions', anonymous('198.51.100.9'));
    const venue = await limiter.check('subscriptions', anonymous('198.51.100.9'));
    // Over it: wait for one token of the IP's refill (120 a minute), not a one-minute block.
    expect(venue).toMatchObject({ admitted: false, retryAfterMs: 500, burst: 40, limit: 120 });
    time.advance(500);
    expect((await limiter.check('subscriptions', anonymous('198.51.100.9'))).admitted).toBe(true);
    // A signed-in user past its burst is one client ignoring retryAfterMs: blocked for the base.
    for (let i = 0; i < 5; i += 1) await limiter.consume('subscriptions', user('u'));
    expect(await limiter.check('subscriptions', user('u'))).toMatchObject({ admitted: false, retryAfterMs: 60_000 });
    time.advance(1_000);
    expect((await limiter.check('subscriptions', user('u'))).admitted).toBe(false);
  });

  it('keys by identityArgs like graphql-rate-limit (getFieldIdentity)', async () => {
    const limiter = make({ votes: { max: 1, identityArgs: ['input.competitionId'] } });
    await limiter.consumeWithArgs('votes', user('a'), { input: { competitionId: 'c1' } });
    await limiter.consumeWithArgs('votes', user('a'), { input: { competitionId: 'c2' } });
    await expect(limiter.consumeWithArgs('votes', user('a'), { input: { competitionId: 'c1' } })).rejects.toMatchObject(
      { code: 'RATE_LIMITED' },
    );
  });

  it('refuses rules that cannot work', () => {
    expect(() => make({ votes: { max: 0 } })).toThrow(/max/);
    expect(() => make({ votes: { max: 1, burst: 0 } })).toThrow(/burst/);
    expect(() => make({ votes: { max: 1, burst: 1.5 } })).toThrow(/burst/);
    expect(() => make({ votes: { max: 1, ipBurst: 10 } })).toThrow(/ipBurst/);
    expect(() => make({ votes: { max: 1, burst: 2, ipBurst: 0 } })).toThrow(/ipBurst/);
    expect(() => make({ votes: { window: 'never' } })).toThrow(/window/);
  });
});

describe('memory live-subscription counter', () => {
  it('admits up to max per identity and frees a slot on release (once)', async () => {
    const live = createMemoryLiveSubscriptionCounter();
    const a = await live.acquire('user:a', 2);
    const b = await live.acquire('user:a', 2);
    expect([a.admitted, b.admitted]).toEqual([true, true]);
    expect(await live.acquire('user:a', 2)).toEqual({ admitted: false, current: 2 });
    expect((await live.acquire('user:b', 2)).admitted).toBe(true);
    if (a.admitted) {
      a.release();
      a.release();
    }
    expect(await live.count('user:a')).toBe(1);
    expect((await live.acquire('user:a', 2)).admitted).toBe(true);
    await live.close();
  });
});
