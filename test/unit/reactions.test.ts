/**
 * Reactions without a network: window math, the heat map grid, input validation, the memory
 * store's aggregate and close-once semantics, the Redis hash decoding, the publisher (fake
 * transaction) and the seq-ordered burst stream.
 */
import { describe, expect, it } from 'vitest';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { AppError } from '../../src/errors.js';
import { createEventBus, type BusEventTarget } from '../../src/realtime/event-bus.js';
import {
  emptyAggregate,
  heatmapCell,
  heatmapIndex,
  toGrid,
  totalOf,
  windowEndMs,
  windowOf,
  windowStartMs,
  type ReactionEntry,
} from '../../src/modules/reactions/reactions.rules.js';
import { createReactionPublisher, type ReactionBurstEvent } from '../../src/modules/reactions/reactions.events.js';
import { inSeqOrder } from '../../src/realtime/stream.js';
import {
  completedSpan,
  createReactionsService,
  validateReaction,
  type SendReactionInput,
} from '../../src/modules/reactions/reactions.service.js';
import { createMemoryReactionStore } from '../../src/modules/reactions/reactions.store.memory.js';
import { parseWindowHash } from '../../src/modules/reactions/reactions.store.redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const viewer = { id: 'u1', name: 'U', role: 'AUDIENCE' as const };

describe('window math', () => {
  it.each([
    { now: 0, windowMs: 250, w: 0, start: 0, end: 250 },
    { now: 249, windowMs: 250, w: 0, start: 0, end: 250 },
    { now: 250, windowMs: 250, w: 1, start: 250, end: 500 },
    { now: 1_000_000_123, windowMs: 250, w: 4_000_000, start: 1_000_000_000, end: 1_000_000_250 },
    { now: 1_700_000_000_999, windowMs: 1000, w: 1_700_000_000, start: 1_700_000_000_000, end: 1_700_000_001_000 },
    { now: 99, windowMs: 10, w: 9, start: 90, end: 100 },
  ])('epoch $now with windowMs $windowMs is window $w = [$start, $end)', ({ now, windowMs, w, start, end }) => {
    expect(windowOf(now, windowMs)).toBe(w);
    expect(windowStartMs(w, windowMs)).toBe(start);
    expect(windowEndMs(w, windowMs)).toBe(end);
  });

  it('counts the completed windows before the one that just ended', () => {
    // now 1100 with 250 ms windows: window 4 [1000, 1250) runs, window 3 [750, 1000) may be publishing.
    expect(completedSpan(1100, 250, 1)).toEqual({ since: -250, until: 750, windows: 4 });
    expect(completedSpan(10_000, 250, 2)).toEqual({ since: 7_750, until: 9_750, windows: 8 });
    expect(completedSpan(10_000, 300, 1)).toEqual({ since: 8_400, until: 9_600, windows: 4 });
  });
});

describe('heat map', () => {
  it.each([
    [0, 0],
    [0.124, 0],
    [0.125, 1],
    [0.5, 4],
    [0.874, 6],
    [0.875, 7],
    [0.999, 7],
    [1, 7],
  ])('coordinate %d falls in row/column %d', (v, index) => {
    expect(heatmapIndex(v)).toBe(index);
  });

  it.each([
    { x: 0, y: 0, cell: 0 },
    { x: 1, y: 0, cell: 7 },
    { x: 0, y: 1, cell: 56 },
    { x: 1, y: 1, cell: 63 },
    { x: 0.125, y: 0.124, cell: 1 },
    { x: 0.124, y: 0.125, cell: 8 },
    { x: 0.999, y: 0.5, cell: 39 },
  ])('($x, $y) is flat cell $cell (row-major: y picks the row, x the column)', ({ x, y, cell }) => {
    expect(heatmapCell(x, y)).toBe(cell);
  });

  it('lays the flat cells out as 8 rows of 8', () => {
    const cells = Array.from({ length: 64 }, (_, i) => i);
    const grid = toGrid(cells);
    expect(grid).toHaveLength(8);
    expect(grid.every((row) => row.length === 8)).toBe(true);
    expect(grid[0]).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(grid[7]![7]).toBe(63);
    expect(grid[2]![5]).toBe(21);
  });
});

describe('validateReaction', () => {
  const base: SendReactionInput = { sessionId: 's1', type: 'CLAP', intensity: 5 };

  it.each([
    { input: base, entry: { type: 'CLAP', intensity: 5, cell: null } },
    { input: { ...base, intensity: 1, x: null, y: null }, entry: { type: 'CLAP', intensity: 1, cell: null } },
    { input: { ...base, type: 'FIRE', intensity: 10, x: 0, y: 0 }, entry: { type: 'FIRE', intensity: 10, cell: 0 } },
    { input: { ...base, type: 'WOW', x: 1, y: 1 }, entry: { type: 'WOW', intensity: 5, cell: 63 } },
    { input: { ...base, type: 'LAUGH', x: 0.3, y: 0.9 }, entry: { type: 'LAUGH', intensity: 5, cell: 58 } },
  ] as { input: SendReactionInput; entry: ReactionEntry }[])('accepts $input', ({ input, entry }) => {
    expect(validateReaction(input)).toEqual(entry);
  });

  it.each([
    { name: 'intensity 0', input: { ...base, intensity: 0 }, field: 'input.intensity' },
    { name: 'intensity 11', input: { ...base, intensity: 11 }, field: 'input.intensity' },
    { name: 'intensity 2.5', input: { ...base, intensity: 2.5 }, field: 'input.intensity' },
    { name: 'intensity -1', input: { ...base, intensity: -1 }, field: 'input.intensity' },
    { name: 'x without y', input: { ...base, x: 0.5 }, field: 'input.y' },
    { name: 'y without x', input: { ...base, y: 0.5, x: null }, field: 'input.x' },
    { name: 'x below 0', input: { ...base, x: -0.01, y: 0.5 }, field: 'input.x' },
    { name: 'x above 1', input: { ...base, x: 1.01, y: 0.5 }, field: 'input.x' },
    { name: 'y above 1', input: { ...base, x: 0.5, y: 2 }, field: 'input.y' },
    { name: 'y NaN', input: { ...base, x: 0.5, y: Number.NaN }, field: 'input.y' },
    { name: 'x Infinity', input: { ...base, x: Number.POSITIVE_INFINITY, y: 0 }, field: 'input.x' },
    { name: 'unknown type', input: { ...base, type: 'BOO' }, field: 'input.type' },
  ] as { name: string; input: SendReactionInput; field: string }[])(
    'rejects $name naming $field',
    ({ input, field }) => {
      let thrown: unknown;
      try {
        validateReaction(input);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(AppError);
      expect(thrown).toMatchObject({ code: 'BAD_USER_INPUT', details: { field } });
    },
  );
});

describe('memory reaction store', () => {
  const entry = (type: ReactionEntry['type'], intensity: number, cell: number | null): ReactionEntry => ({
    type,
    intensity,
    cell,
  });

  it('aggregates per type, intensity and cell, per session and window', async () => {
    const store = createMemoryReactionStore({ windowMs: 250 });
    expect(await store.add('s1', 10, entry('CLAP', 3, 0))).toBe(true);
    expect(await store.add('s1', 10, entry('CLAP', 4, 0))).toBe(true);
    expect(await store.add('s1', 10, entry('FIRE', 10, 63))).toBe(true);
    expect(await store.add('s1', 10, entry('WOW', 1, null))).toBe(true);
    expect(await store.add('s1', 11, entry('HEART', 2, 5))).toBe(true);
    expect(await store.add('s2', 10, entry('LAUGH', 2, 5))).toBe(true);

    const w10 = await store.close('s1', 10);
    expect(w10?.counts).toEqual({ CLAP: 2, FIRE: 1, HEART: 0, WOW: 1, LAUGH: 0 });
    expect(w10 && totalOf(w10)).toBe(4);
    expect(w10?.intensity).toBe(18);
    expect(w10?.cells[0]).toBe(2);
    expect(w10?.cells[63]).toBe(1);
    expect(w10?.cells.reduce((a, b) => a + b, 0)).toBe(3);
    expect((await store.close('s1', 11))?.counts.HEART).toBe(1);
    expect((await store.close('s2', 10))?.counts.LAUGH).toBe(1);
  });

  it('hands a window to exactly one closer and refuses adds after the close', async () => {
    const store = createMemoryReactionStore({ windowMs: 250 });
    await store.add('s1', 1, entry('CLAP', 1, null));
    const closers = await Promise.all([store.close('s1', 1), store.close('s1', 1), store.close('s1', 1)]);
    expect(closers.filter((a) => a !== null)).toHaveLength(1);
    expect(await store.add('s1', 1, entry('CLAP', 1, null))).toBe(false);
    expect(await store.close('s1', 1)).toBeNull();
    // A window nobody added to closes empty, once.
    expect(totalOf((await store.close('s1', 2))!)).toBe(0);
    expect(await store.close('s1', 2)).toBeNull();
    expect(await store.add('s1', 2, entry('CLAP', 1, null))).toBe(false);
  });

  it('forgets closed windows after the retention time', async () => {
    let now = 0;
    const store = createMemoryReactionStore({ windowMs: 250, now: () => now });
    await store.close('s1', 1);
    expect(await store.add('s1', 1, entry('CLAP', 1, null))).toBe(false);
    now = 61_000;
    await store.close('s1', 999); // closing sweeps
    expect(await store.add('s1', 1, entry('CLAP', 1, null))).toBe(true);
  });
});

describe('Redis window hash', () => {
  it('decodes HGETALL into an aggregate and ignores the close mark and unknown fields', () => {
    const aggregate = parseWindowHash([
      't:CLAP',
      '3',
      't:WOW',
      '1',
      'i',
      '17',
      'c:0',
      '2',
      'c:63',
      '1',
      '_closed',
      '1',
      't:toString',
      '9',
      'c:64',
      '5',
    ]);
    expect(aggregate.counts).toEqual({ ...emptyAggregate().counts, CLAP: 3, WOW: 1 });
    expect(aggregate.intensity).toBe(17);
    expect(aggregate.cells[0]).toBe(2);
    expect(aggregate.cells[63]).toBe(1);
    expect(aggregate.cells.reduce((a, b) => a + b, 0)).toBe(3);
  });
});

/** A transaction that keeps ReactionWindow rows by (sessionId, windowStart) and hands out seqs. */
function fakeDatabase() {
  const state = { seq: 0, rows: new Map<string, { total: number }>(), fail: 0, logged: 0 };
  const tx = {
    $queryRaw: async () => [{ seq: ++state.seq }],
    // The resume history's append (event-log.ts): one row per burst.
    $executeRaw: async () => {
      state.logged += 1;
      return 1;
    },
    reactionWindow: {
      createMany: async ({ data }: { data: { sessionId: string; windowStart: Date; total: number }[] }) => {
        let count = 0;
        for (const row of data) {
          const key = `${row.sessionId}@${row.windowStart.toISOString()}`;
          if (state.rows.has(key)) continue;
          state.rows.set(key, { total: row.total });
          count += 1;
        }
        return { count };
      },
    },
  };
  const prisma = {
    $transaction: async <T>(fn: (t: typeof tx) => Promise<T>): Promise<T> => {
      if (state.fail > 0) {
        state.fail -= 1;
        throw new Error('database unavailable');
      }
      return fn(tx);
    },
  } as unknown as PrismaClient;
  return { prisma, state };
}

function memoryBus() {
  return createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });
}

function collect(bus: ReturnType<typeof memoryBus>, sessionId: string) {
  const received: ReactionBurstEvent[] = [];
  const sub = bus.subscribe('reactions', sessionId);
  void (async () => {
    for await (const event of sub) received.push(event);
  })();
  return { received, sub };
}

describe('reaction publishing', () => {
  it('moves a reaction whose window already closed into a later window, so counts stay exact', async () => {
    let now = 10_000; // window 40 of 250 ms
    const db = fakeDatabase();
    const bus = memoryBus();
    const { received, sub } = collect(bus, 's1');
    const service = createReactionsService({
      prisma: db.prisma,
      bus,
      store: createMemoryReactionStore({ windowMs: 250 }),
      windowMs: 250,
      sessionStatus: async () => 'LIVE',
      onError: () => undefined,
      now: () => now,
    });
    expect(await service.send(viewer, { sessionId: 's1', type: 'CLAP', intensity: 2 })).toEqual({ window: 40 });
    const first = await service.publishWindow('s1', 40);
    expect(first?.data).toMatchObject({
      total: 1,
      intensity: 2,
      windowStart: new Date(10_000).toISOString(),
      windowMs: 250,
    });
    // A second instance closed window 40 already; this request still read a clock inside it.
    expect(await service.send(viewer, { sessionId: 's1', type: 'FIRE', intensity: 3, x: 1, y: 0 })).toEqual({
      window: 41,
    });
    // Publishing window 40 again yields nothing; window 41 carries the late reaction.
    expect(await service.publishWindow('s1', 40)).toBeNull();
    const second = await service.publishWindow('s1', 41);
    expect(second?.data.counts.find((c) => c.type === 'FIRE')?.count).toBe(1);
    expect(second?.data.heatmap[0]![7]).toBe(1);
    expect([first?.seq, second?.seq]).toEqual([1, 2]);
    now = 20_000;
    await service.close();
    await sleep(0);
    expect(received.map((e) => e.data.total)).toEqual([1, 1]);
    expect(db.state.rows.size).toBe(2);
    sub.close();
  });

  it('rejects reactions unless the session is LIVE, and unknown sessions as NOT_FOUND', async () => {
    const statuses: Record<string, 'LIVE' | 'PAUSED' | null> = { live: 'LIVE', paused: 'PAUSED' };
    const service = createReactionsService({
      prisma: fakeDatabase().prisma,
      bus: memoryBus(),
      store: createMemoryReactionStore({ windowMs: 250 }),
      windowMs: 250,
      sessionStatus: async (id) => statuses[id] ?? null,
      onError: () => undefined,
    });
    await expect(service.send(viewer, { sessionId: 'paused', type: 'CLAP', intensity: 1 })).rejects.toMatchObject({
      code: 'CONFLICT',
      details: { reason: 'SESSION_NOT_LIVE', status: 'PAUSED' },
    });
    await expect(service.send(viewer, { sessionId: 'nope', type: 'CLAP', intensity: 1 })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    // Validation comes first: a bad input is BAD_USER_INPUT even for a session that isn't LIVE.
    await expect(service.send(viewer, { sessionId: 'paused', type: 'CLAP', intensity: 0 })).rejects.toMatchObject({
      code: 'BAD_USER_INPUT',
    });
    await service.send(viewer, { sessionId: 'live', type: 'CLAP', intensity: 1 });
    await service.close();
  });

  it('publishes each window once, after its end + grace, and only windows that had reactions', async () => {
    const windowMs = 40;
    const db = fakeDatabase();
    const bus = memoryBus();
    const { received, sub } = collect(bus, 's1');
    const store = createMemoryReactionStore({ windowMs });
    const publisher = createReactionPublisher({
      prisma: db.prisma,
      bus,
      store,
      windowMs,
      graceMs: 10,
      onError: () => undefined,
    });
    const w = windowOf(Date.now(), windowMs);
    await store.add('s1', w, { type: 'CLAP', intensity: 1, cell: null });
    publisher.track('s1', w);
    publisher.track('s1', w); // a second reaction in the same window: still one timer
    expect(publisher.pending()).toBe(1);
    await sleep(windowEndMs(w, windowMs) - Date.now() - 5);
    expect(received).toHaveLength(0); // not before the window ended
    await sleep(windowMs + 30);
    expect(received.map((e) => e.data.total)).toEqual([1]);
    expect(publisher.pending()).toBe(0);
    // Another instance tracking the same (already closed) window publishes nothing.
    const other = createReactionPublisher({
      prisma: db.prisma,
      bus,
      store,
      windowMs,
      graceMs: 0,
      onError: () => undefined,
    });
    other.track('s1', w);
    await other.close();
    expect(received).toHaveLength(1);
    expect(db.state.rows.size).toBe(1);
    expect(db.state.logged).toBe(1); // the burst is in the resume history once
    sub.close();
  });

  it('retries a failed transaction with the closed aggregate, and close() publishes pending windows at once', async () => {
    const windowMs = 60_000; // far from its end: only close() can publish it in time
    const db = fakeDatabase();
    const bus = memoryBus();
    const { received, sub } = collect(bus, 's1');
    const store = createMemoryReactionStore({ windowMs });
    const errors: unknown[] = [];
    const publisher = createReactionPublisher({
      prisma: db.prisma,
      bus,
      store,
      windowMs,
      onError: (e) => errors.push(e),
    });
    const w = windowOf(Date.now(), windowMs);
    for (let i = 0; i < 3; i += 1) await store.add('s1', w, { type: 'HEART', intensity: 4, cell: 9 });
    publisher.track('s1', w);
    db.state.fail = 2;
    await publisher.close();
    await sleep(0);
    expect(errors).toHaveLength(2);
    expect(received.map((e) => [e.seq, e.data.total, e.data.intensity, e.data.heatmap[1]![1]])).toEqual([
      [1, 3, 12, 3],
    ]);
    sub.close();
  });
});

describe('inSeqOrder', () => {
  const burst = (seq: number): ReactionBurstEvent => ({
    topic: 'reactions:s1',
    seq,
    publishedAt: new Date(0).toISOString(),
    data: {
      sessionId: 's1',
      windowStart: new Date(seq * 250).toISOString(),
      windowMs: 250,
      total: 1,
      intensity: 1,
      counts: [],
      heatmap: [],
    },
  });

  it('reorders bursts that arrive out of seq order and drops those from before the subscription', async () => {
    const bus = memoryBus();
    const stream = inSeqOrder(bus.subscribe('reactions', 's1'), { startAfter: async () => 3, gapWaitMs: 1_000 });
    const first = stream.next();
    await sleep(0);
    for (const seq of [2, 5, 3, 4, 7, 6]) bus.publish('reactions', 's1', burst(seq));
    const seqs = [(await first).value.seq];
    for (let i = 0; i < 3; i += 1) seqs.push((await stream.next()).value.seq);
    expect(seqs).toEqual([4, 5, 6, 7]);
    await stream.return!();
  });

  it('skips a gap after gapWaitMs, then never goes back', async () => {
    const bus = memoryBus();
    const stream = inSeqOrder(bus.subscribe('reactions', 's1'), { startAfter: async () => 0, gapWaitMs: 50 });
    const first = stream.next();
    await sleep(0);
    bus.publish('reactions', 's1', burst(1));
    bus.publish('reactions', 's1', burst(3));
    expect((await first).value.seq).toBe(1);
    const started = Date.now();
    expect((await stream.next()).value.seq).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    bus.publish('reactions', 's1', burst(2)); // too late: older than what was delivered
    bus.publish('reactions', 's1', burst(4));
    expect((await stream.next()).value.seq).toBe(4);
    await stream.return!();
  });

  it('ends at once on return(), releasing a waiting next() and the topic subscription', async () => {
    const bus = memoryBus();
    const stream = inSeqOrder(bus.subscribe('reactions', 's1'), { startAfter: async () => 0, gapWaitMs: 10_000 });
    const waiting = stream.next();
    await sleep(0);
    bus.publish('reactions', 's1', burst(2)); // held for the missing seq 1
    await sleep(0);
    await stream.return!();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(bus.size()).toBe(0);
  });
});
