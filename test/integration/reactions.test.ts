/**
 * Reactions over HTTP on both backends: 500 reactions spread over several clock-aligned windows
 * come back as bursts (SSE subscriber) and durable ReactionWindow rows whose totals, per-type
 * counts, intensity and heat map are exactly what was sent; errors from the contract's catalogue.
 * Sessions are created through Prisma here (the sessions module owns their API).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totalOf, type ReactionEntry } from '../../src/modules/reactions/reactions.rules.js';
import type { ReactionStore } from '../../src/modules/reactions/reactions.store.js';
import { createMemoryReactionStore } from '../../src/modules/reactions/reactions.store.memory.js';
import { createRedisReactionStore, reactionWindowKey } from '../../src/modules/reactions/reactions.store.redis.js';
import {
  ReactionStatsDocument,
  ReactionsDocument,
  SendReactionDocument,
  type SendReactionInput,
} from '../generated/graphql.js';
import { useTestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { subscribe } from '../support/clients.js';
import { codesOf, dataOf, tokenFor } from '../support/graphql.js';
import { startRedis } from '../support/redis.js';

const WINDOW_MS = 200;
const TYPES = ['CLAP', 'FIRE', 'HEART', 'WOW', 'LAUGH'] as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Resolves just after the next window boundary of the server clock (same host clock). */
const nextWindow = () => sleep(WINDOW_MS - (Date.now() % WINDOW_MS) + 5);

/**
 * Reaction i, with its expected heat map cell built by construction (not by the code under
 * test): every fourth has no position; the others sit in cell (row, col) at its centre, its
 * lower edge, or (x = 1, y = 1) which belongs to the last cell.
 */
function reaction(sessionId: string, i: number): { input: SendReactionInput; cell: [number, number] | null } {
  const type = TYPES[i % TYPES.length]!;
  const intensity = (i % 10) + 1;
  const col = (i * 3) % 8;
  const row = (i * 5) % 8;
  switch (i % 4) {
    case 0:
      return { input: { sessionId, type, intensity }, cell: null };
    case 1:
      return { input: { sessionId, type, intensity, x: (col + 0.5) / 8, y: (row + 0.5) / 8 }, cell: [row, col] };
    case 2:
      return { input: { sessionId, type, intensity, x: col / 8, y: row / 8 }, cell: [row, col] };
    default:
      return { input: { sessionId, type, intensity, x: 1, y: 1 }, cell: [7, 7] };
  }
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

describe.each(backends)('reactions on $name', (backend) => {
  const t = useTestApp(backend, { REACTION_WINDOW_MS: String(WINDOW_MS) });
  const gql = t.gql;

  async function createSession(status: 'SCHEDULED' | 'LIVE' | 'PAUSED' | 'ENDED'): Promise<string> {
    const prisma = t.app.database.prisma;
    const competition = await prisma.competition.create({
      data: { title: 'Reactions', votingMethod: 'SIMPLE', status: 'OPEN' },
    });
    const session = await prisma.eventSession.create({
      data: { competitionId: competition.id, status, submissionIds: [], presentationSeconds: 60 },
    });
    return session.id;
  }

  it('turns 500 reactions over several windows into bursts and durable windows that add up exactly', async () => {
    const sessionId = await createSession('LIVE');
    const feed = subscribe('sse', t.url, ReactionsDocument, { sessionId });
    try {
      // The stream is live only; make sure it is before sending (a probe reaction's burst arrives).
      const probe = await tokenFor({ sub: 'probe' });
      dataOf(await gql(SendReactionDocument, { input: { sessionId, type: 'CLAP', intensity: 1 } }, probe));
      await feed.waitFor((r) => r.data !== undefined);
      await sleep(3 * WINDOW_MS);
      const before = feed.results.length;
      expect(feed.results.map((r) => r.data?.reactions.total)).toEqual([1]);

      const reactions = Array.from({ length: 500 }, (_, i) => reaction(sessionId, i));
      const tokens = await Promise.all(Array.from({ length: 50 }, (_, u) => tokenFor({ sub: `reactor-${u}` })));
      // Three batches, each started just after a window boundary: at least three windows.
      const batches = [reactions.slice(0, 170), reactions.slice(170, 340), reactions.slice(340)];
      let index = 0;
      for (const batch of batches) {
        await nextWindow();
        await pool(batch, 16, async (r) => {
          const result = await gql(SendReactionDocument, { input: r.input }, tokens[index++ % tokens.length]);
          expect(dataOf(result).sendReaction).toBe(true);
        });
      }

      const expectedCounts = Object.fromEntries(
        TYPES.map((type) => [type, reactions.filter((r) => r.input.type === type).length]),
      );
      const expectedIntensity = reactions.reduce((sum, r) => sum + r.input.intensity, 0);
      const expectedHeatmap = Array.from({ length: 8 }, () => new Array<number>(8).fill(0));
      for (const r of reactions) if (r.cell) expectedHeatmap[r.cell[0]]![r.cell[1]]! += 1;

      const bursts = async () => {
        await feed.waitFor(
          () => feed.results.slice(before).reduce((s, r) => s + (r.data?.reactions.total ?? 0), 0) >= 500,
          10_000,
        );
        await sleep(3 * WINDOW_MS); // nothing more may come: no reactions, no bursts
        return feed.results.slice(before).map((r) => r.data!.reactions);
      };
      const received = await bursts();
      expect(received.length).toBeGreaterThanOrEqual(3);
      expect(received.reduce((s, b) => s + b.total, 0)).toBe(500);
      expect(received.reduce((s, b) => s + b.intensity, 0)).toBe(expectedIntensity);
      const counts = Object.fromEntries(TYPES.map((type) => [type, 0]));
      const heatmap = Array.from({ length: 8 }, () => new Array<number>(8).fill(0));
      for (const b of received) {
        expect(b.sessionId).toBe(sessionId);
        expect(b.windowMs).toBe(WINDOW_MS);
        expect(new Date(b.windowStart).getTime() % WINDOW_MS).toBe(0);
        expect(b.counts.map((c) => c.type)).toEqual([...TYPES]);
        expect(b.total).toBe(b.counts.reduce((s, c) => s + c.count, 0));
        for (const c of b.counts) counts[c.type]! += c.count;
        expect(b.heatmap).toHaveLength(8);
        b.heatmap.forEach((cells, row) => cells.forEach((n, col) => (heatmap[row]![col]! += n)));
      }
      expect(counts).toEqual(expectedCounts);
      expect(heatmap).toEqual(expectedHeatmap);
      const all = feed.results.map((r) => r.data!.reactions);
      for (let i = 1; i < all.length; i += 1) expect(all[i]!.seq).toBe(all[i - 1]!.seq + 1);
      expect(new Set(all.map((b) => b.windowStart)).size).toBe(all.length);

      // One durable row per burst, with the same numbers (seq is commit order: a window that was
      // slow to commit may come after a later one, so compare by window).
      const rows = await t.app.database.prisma.reactionWindow.findMany({
        where: { sessionId },
        orderBy: { windowStart: 'asc' },
      });
      const byWindow = [...all].sort((a, b) => (a.windowStart < b.windowStart ? -1 : 1));
      expect(rows.map((r) => [r.windowStart.toISOString(), r.total])).toEqual(
        byWindow.map((b) => [b.windowStart, b.total]),
      );
      expect(rows.reduce((s, r) => s + r.total, 0)).toBe(501);
      const rowCounts = Object.fromEntries(TYPES.map((type) => [type, 0]));
      for (const r of rows.slice(1))
        for (const type of TYPES) rowCounts[type]! += (r.counts as Record<string, number>)[type]!;
      expect(rowCounts).toEqual(expectedCounts);
      const rowHeatmap = Array.from({ length: 8 }, () => new Array<number>(8).fill(0));
      for (const r of rows)
        (r.heatmap as number[][]).forEach((cells, row) => cells.forEach((n, col) => (rowHeatmap[row]![col]! += n)));
      expect(rowHeatmap).toEqual(expectedHeatmap);

      // Analytics over the durable windows.
      const { reactionStats } = dataOf(await gql(ReactionStatsDocument, { sessionId, lastSeconds: 60 }));
      expect(reactionStats.total).toBe(501);
      expect(reactionStats.windows).toBe(rows.length);
      expect(reactionStats.heatmap).toEqual(expectedHeatmap);
      expect(Object.fromEntries(reactionStats.counts.map((c) => [c.type, c.count]))).toEqual({
        ...expectedCounts,
        CLAP: expectedCounts['CLAP']! + 1,
      });
      expect(reactionStats.reactionsPerSecond).toBeCloseTo(501 / 60, 1);
      expect(await t.app.services.reactions.reactionsPerSecond(sessionId, 60)).toBeCloseTo(501 / 60, 1);
      expect(t.app.services.reactions.pendingWindows()).toBe(0);
    } finally {
      await feed.close();
    }
  });

  it.each(['SCHEDULED', 'PAUSED', 'ENDED'] as const)(
    'rejects reactions while the session is %s with CONFLICT',
    async (status) => {
      const sessionId = await createSession(status);
      const result = await gql(
        SendReactionDocument,
        { input: { sessionId, type: 'FIRE', intensity: 3 } },
        await tokenFor({ sub: 'fan' }),
      );
      expect(codesOf(result)).toEqual(['CONFLICT']);
      expect(result.errors?.[0]?.extensions).toMatchObject({ reason: 'SESSION_NOT_LIVE', status, retryable: false });
    },
  );

  it('stops accepting within a second of the session leaving LIVE', async () => {
    const sessionId = await createSession('LIVE');
    const token = await tokenFor({ sub: 'fan' });
    dataOf(await gql(SendReactionDocument, { input: { sessionId, type: 'WOW', intensity: 2 } }, token));
    await t.app.database.prisma.eventSession.update({ where: { id: sessionId }, data: { status: 'PAUSED' } });
    await sleep(1_050);
    expect(
      codesOf(await gql(SendReactionDocument, { input: { sessionId, type: 'WOW', intensity: 2 } }, token)),
    ).toEqual(['CONFLICT']);
  });

  it('answers NOT_FOUND for an unknown session, on the mutation and the subscription', async () => {
    const result = await gql(
      SendReactionDocument,
      { input: { sessionId: 'no-such-session', type: 'CLAP', intensity: 1 } },
      await tokenFor({ sub: 'fan' }),
    );
    expect(codesOf(result)).toEqual(['NOT_FOUND']);
    const feed = subscribe('sse', t.url, ReactionsDocument, { sessionId: 'no-such-session' });
    const first = await feed.waitFor(() => true);
    expect(codesOf(first)).toEqual(['NOT_FOUND']);
    await feed.close();
    expect(codesOf(await gql(ReactionStatsDocument, { sessionId: 'no-such-session' }))).toEqual(['NOT_FOUND']);
  });

  it('requires authentication to react (UNAUTHENTICATED), but anyone may watch', async () => {
    const sessionId = await createSession('LIVE');
    const result = await gql(SendReactionDocument, { input: { sessionId, type: 'CLAP', intensity: 1 } });
    expect(codesOf(result)).toEqual(['UNAUTHENTICATED']);
    expect(result.data).toBeNull();
    const feed = subscribe('sse', t.url, ReactionsDocument, { sessionId });
    try {
      await sleep(100);
      dataOf(
        await gql(
          SendReactionDocument,
          { input: { sessionId, type: 'HEART', intensity: 7, x: 0, y: 0 } },
          await tokenFor({ sub: 'fan' }),
        ),
      );
      const burst = await feed.waitFor((r) => r.data !== undefined);
      expect(burst.data?.reactions).toMatchObject({ total: 1, intensity: 7 });
      expect(burst.data?.reactions.heatmap[0]![0]).toBe(1);
    } finally {
      await feed.close();
    }
  });

  it.each([
    { name: 'intensity 0', input: { intensity: 0 }, field: 'input.intensity' },
    { name: 'intensity 11', input: { intensity: 11 }, field: 'input.intensity' },
    { name: 'x without y', input: { intensity: 1, x: 0.5 }, field: 'input.y' },
    { name: 'y without x', input: { intensity: 1, y: 0.5 }, field: 'input.x' },
    { name: 'x out of range', input: { intensity: 1, x: 1.5, y: 0.5 }, field: 'input.x' },
    { name: 'y negative', input: { intensity: 1, x: 0.5, y: -0.1 }, field: 'input.y' },
  ])('names the field for bad input: $name', async ({ input, field }) => {
    const sessionId = await createSession('LIVE');
    const result = await gql(
      SendReactionDocument,
      { input: { sessionId, type: 'CLAP', ...input } },
      await tokenFor({ sub: 'fan' }),
    );
    expect(codesOf(result)).toEqual(['BAD_USER_INPUT']);
    expect(result.errors?.[0]?.extensions).toMatchObject({ field, retryable: false });
  });

  it('rejects a reactionStats span outside 1..3600 seconds', async () => {
    const sessionId = await createSession('LIVE');
    for (const lastSeconds of [0, 3601]) {
      const result = await gql(ReactionStatsDocument, { sessionId, lastSeconds });
      expect(codesOf(result)).toEqual(['BAD_USER_INPUT']);
      expect(result.errors?.[0]?.extensions).toMatchObject({ field: 'lastSeconds' });
    }
  });
});

describe('ReactionStore implementations', () => {
  let redisServer: Awaited<ReturnType<typeof startRedis>>;
  let redis: Redis;
  beforeAll(async () => {
    redisServer = await startRedis();
    redis = new Redis(redisServer.url, { lazyConnect: true });
    await redis.connect();
  });
  afterAll(async () => {
    redis?.disconnect();
    await redisServer?.stop();
  });

  const stores: { name: string; make: () => ReactionStore }[] = [
    { name: 'memory', make: () => createMemoryReactionStore({ windowMs: WINDOW_MS }) },
    { name: 'Redis', make: () => createRedisReactionStore({ redis, windowMs: WINDOW_MS }) },
  ];
  const entry = (i: number): ReactionEntry => ({
    type: TYPES[i % 5]!,
    intensity: (i % 10) + 1,
    cell: i % 3 === 0 ? null : i % 64,
  });

  it.each(stores)(
    '$name: every add that was accepted is in the one aggregate a racing close returns',
    async ({ make }) => {
      const store = make();
      const sessionId = `race-${Math.random()}`;
      const adds: Promise<boolean>[] = [];
      let closing: Promise<Awaited<ReturnType<ReactionStore['close']>>[]> | undefined;
      for (let i = 0; i < 2000; i += 1) {
        adds.push(store.add(sessionId, 7, entry(i)));
        if (i === 1000)
          closing = Promise.all([store.close(sessionId, 7), store.close(sessionId, 7), store.close(sessionId, 7)]);
      }
      const accepted = (await Promise.all(adds)).map((ok, i) => (ok ? i : -1)).filter((i) => i >= 0);
      const closed = (await closing!).filter((a) => a !== null);
      expect(closed).toHaveLength(1);
      const aggregate = closed[0]!;
      expect(accepted.length).toBeGreaterThan(0);
      expect(accepted.length).toBeLessThan(2000);
      expect(totalOf(aggregate)).toBe(accepted.length);
      expect(aggregate.intensity).toBe(accepted.reduce((s, i) => s + entry(i).intensity, 0));
      expect(aggregate.cells.reduce((s, n) => s + n, 0)).toBe(accepted.filter((i) => entry(i).cell !== null).length);
      expect(await store.add(sessionId, 7, entry(0))).toBe(false);
      expect(await store.close(sessionId, 7)).toBeNull();
      expect(await store.add(sessionId, 8, entry(0))).toBe(true);
    },
  );

  it('Redis: keeps windows under reactions:<sessionId>:<window> with a TTL, and survives a script flush', async () => {
    const store = createRedisReactionStore({ redis, windowMs: WINDOW_MS });
    await store.add('ttl', 3, { type: 'FIRE', intensity: 4, cell: 9 });
    expect(await redis.hgetall(reactionWindowKey('ttl', 3))).toEqual({ 't:FIRE': '1', i: '4', 'c:9': '1' });
    expect(reactionWindowKey('ttl', 3)).toBe('reactions:ttl:3');
    const ttl = await redis.pttl(reactionWindowKey('ttl', 3));
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    await redis.script('FLUSH');
    await store.add('ttl', 3, { type: 'FIRE', intensity: 1, cell: null });
    const closed = await store.close('ttl', 3);
    expect(closed?.counts.FIRE).toBe(2);
    expect(await redis.pttl(reactionWindowKey('ttl', 3))).toBeGreaterThan(50_000);
    // An empty window closes empty, and is marked closed (with a TTL) for late adds.
    expect(totalOf((await store.close('ttl', 4))!)).toBe(0);
    expect(await redis.pttl(reactionWindowKey('ttl', 4))).toBeGreaterThan(50_000);
  });
});
