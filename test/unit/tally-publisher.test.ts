/**
 * The coalescing of live tallies, without a database: a fake transaction hands out seqs and the
 * current counts. (The SQL itself is covered by the integration tests on PGlite and PostgreSQL.)
 */
import { describe, expect, it } from 'vitest';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { createEventBus, type BusEventTarget } from '../../src/realtime/event-bus.js';
import { createTallyPublisher } from '../../src/modules/voting/voting.events.js';

function fakeDatabase() {
  const state = { seq: 0, votes: 0, transactions: 0, fail: 0 };
  const tx = {
    // nextSeq/currentSeq read `seq`; readCounts reads the submission counts.
    $queryRaw: async (strings: TemplateStringsArray) => {
      const sql = strings.join('?');
      if (sql.includes('"TopicSequence"') && sql.includes('INSERT')) return [{ seq: ++state.seq }];
      if (sql.includes('"TopicSequence"')) return [{ seq: state.seq }];
      return [{ submissionId: 's1', votes: state.votes, score: state.votes }];
    },
    $executeRaw: async () => 0,
  };
  const prisma = {
    $transaction: async <T>(fn: (t: typeof tx) => Promise<T>): Promise<T> => {
      state.transactions += 1;
      if (state.fail > 0) {
        state.fail -= 1;
        throw new Error('database unavailable');
      }
      return fn(tx);
    },
  } as unknown as PrismaClient;
  return { prisma, state };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function setup(flushMs: number) {
  const db = fakeDatabase();
  const bus = createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });
  const errors: unknown[] = [];
  const publisher = createTallyPublisher({ prisma: db.prisma, bus, flushMs, onError: (e) => errors.push(e) });
  const received: { seq: number; total: number }[] = [];
  const sub = bus.subscribe('tally', 'c1');
  void (async () => {
    for await (const event of sub) received.push({ seq: event.seq, total: event.data.totalVotes });
  })();
  return { ...db, publisher, received, errors, sub };
}

describe('tally publisher', () => {
  it('publishes at most once per window during a burst, and the last update is exact', async () => {
    const { state, publisher, received, sub } = setup(50);
    const started = Date.now();
    while (Date.now() - started < 300) {
      state.votes += 1;
      publisher.markDirty('c1');
      await sleep(2);
    }
    await sleep(120);
    const elapsed = Date.now() - started;
    // One immediate flush plus at most one per 50 ms window.
    expect(received.length).toBeLessThanOrEqual(Math.ceil(elapsed / 50) + 1);
    expect(received.length).toBeGreaterThanOrEqual(3);
    expect(received.at(-1)?.total).toBe(state.votes);
    expect(received.map((r) => r.seq)).toEqual(received.map((_, i) => i + 1));
    sub.close();
  });

  it('flushes a single vote right away rather than after a full window', async () => {
    const { state, publisher, received, sub } = setup(10_000);
    state.votes = 1;
    publisher.markDirty('c1');
    await sleep(30);
    expect(received).toEqual([{ seq: 1, total: 1 }]);
    sub.close();
    await publisher.close();
  });

  it('retries a failed flush, so a committed vote is still broadcast', async () => {
    const { state, publisher, received, errors, sub } = setup(10);
    state.fail = 2;
    state.votes = 7;
    publisher.markDirty('c1');
    await sleep(150);
    expect(errors).toHaveLength(2);
    expect(received.at(-1)?.total).toBe(7);
    sub.close();
  });

  it('close() publishes what is still pending', async () => {
    const { state, publisher, received, sub } = setup(10_000);
    publisher.markDirty('c1');
    await sleep(20);
    state.votes = 3;
    publisher.markDirty('c1'); // throttled: next window is 10 s away
    await publisher.close();
    await sleep(5);
    expect(received.at(-1)?.total).toBe(3);
    sub.close();
  });
});
