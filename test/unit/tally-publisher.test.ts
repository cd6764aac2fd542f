/**
 * The coalescing of live tallies, without a database: a fake transaction hands out seqs and the
 * current counts. (The SQL itself is covered by the integration tests on PGlite and PostgreSQL.)
 */
import { describe, expect, it, vi } from 'vitest';
import type { PrismaClient } from '../../src/generated/prisma/client.js';
import { createEventBus, type BusEventTarget } from '../../src/realtime/event-bus.js';
import { createFanoutPacer, type FanoutPacer } from '../../src/realtime/fanout-pacer.js';
import type { TallyEvent } from '../../src/modules/voting/voting.events.js';
import { createTallyPublisher } from '../../src/modules/voting/voting.publisher.js';
import { untilClosed } from '../../src/modules/voting/voting.stream.js';

/** Models the competition's TopicSequence row and one submission's count. */
function fakeDatabase() {
  const state = {
    seq: 0,
    updatedAt: new Date(0),
    stateHash: null as string | null,
    votes: 0,
    status: 'OPEN',
    transactions: 0,
    fail: 0,
    /** createdAt of the competition's latest vote (sweepStale's lookup). */
    lastVoteAt: null as Date | null,
  };
  const tx = {
    $queryRaw: async (strings: TemplateStringsArray) => {
      const sql = strings.join('?');
      if (sql.includes('"TopicSequence"'))
        return [{ seq: state.seq, updatedAt: state.updatedAt, stateHash: state.stateHash }];
      if (sql.includes('"votingMethod"') && !sql.includes('"BallotEntry"')) return [{ votingMethod: 'SIMPLE' }];
      return [
        {
          submissionId: 's1',
          votes: state.votes,
          score: state.votes,
          votesLastMinute: 0,
          previousMinute: 0,
          status: state.status,
        },
      ];
    },
    // The flush's UPDATE "TopicSequence" SET seq, updatedAt, stateHash (and the fold of the tally deltas, a no-op here).
    $executeRaw: async (strings: TemplateStringsArray, seq: number, updatedAt: Date, stateHash: string) => {
      if (strings.join('?').includes('UPDATE "TopicSequence"')) Object.assign(state, { seq, updatedAt, stateHash });
      return 1;
    },
  };
  const prisma = {
    // sweepStale: the OPEN competitions not published since the cutoff, with their latest vote.
    $queryRaw: async (_strings: TemplateStringsArray, cutoff: Date) =>
      state.status === 'OPEN' && state.updatedAt < cutoff
        ? [{ id: 'c1', publishedAt: state.updatedAt, lastVoteAt: state.lastVoteAt }]
        : [],
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

function setup(flushMs: number, pacer?: FanoutPacer) {
  const db = fakeDatabase();
  const bus = createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });
  const errors: unknown[] = [];
  const publisher = createTallyPublisher({
    prisma: db.prisma,
    bus,
    flushMs,
    onError: (e) => errors.push(e),
    ...(pacer && { pacer }),
  });
  const received: { seq: number; total: number }[] = [];
  const sub = bus.subscribe('tally', 'c1');
  void (async () => {
    for await (const event of sub) received.push({ seq: event.seq, total: event.data.totalVotes });
  })();
  return { ...db, bus, publisher, received, errors, sub };
}

describe('tally publisher', () => {
  it('sweepStale: publishes what an instance that died inside its window owed, once', async () => {
    const { state, publisher: dead, received, sub, prisma } = setup(20);
    state.votes = 1;
    state.lastVoteAt = new Date();
    dead.markDirty('c1');
    await sleep(30);
    expect(received).toEqual([{ seq: 1, total: 1 }]);
    // Two more votes inside the window; the instance dies before its next flush.
    state.votes = 3;
    state.lastVoteAt = new Date();
    const bus = createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });
    const survivor = createTallyPublisher({ prisma, bus, flushMs: 20, onError: () => undefined });
    const published: number[] = [];
    const onSurvivor = bus.subscribe('tally', 'c1');
    void (async () => {
      for await (const event of onSurvivor) published.push(event.data.totalVotes);
    })();
    expect(await survivor.sweepStale(60_000)).toEqual([]); // published recently: not stale yet
    await sleep(60);
    expect(await survivor.sweepStale(50)).toEqual(['c1']);
    await sleep(10);
    expect(published).toEqual([3]);
    // Nothing owed any more: unchanged once (its snapshot sent again, the same seq: watchers drop
    // it), then not looked at again until a new vote.
    await sleep(60);
    expect(await survivor.sweepStale(50)).toEqual(['c1']); // its last vote may have missed that flush: checked
    const transactions = state.transactions;
    expect(await survivor.sweepStale(50)).toEqual([]);
    expect(state.transactions).toBe(transactions);
    await sleep(10);
    expect(published).toEqual([3, 3]);
    sub.close();
    onSurvivor.close();
  });

  it('sweepStale: publishes what an instance killed between its flush commit and its publish owed', async () => {
    const { state, received, sub, prisma, bus } = setup(20);
    // The dying instance: its flush commits (seq 1, 2 votes), its publish never leaves it.
    const isolated = createEventBus({
      eventTarget: new EventTarget() as BusEventTarget,
      barrier: () => Promise.resolve(),
    });
    const dead = createTallyPublisher({ prisma, bus: isolated, flushMs: 20, onError: () => undefined });
    state.votes = 2;
    state.lastVoteAt = new Date();
    dead.markDirty('c1');
    await vi.waitFor(() => expect(state.seq).toBe(1));
    expect(received).toEqual([]);
    // A survivor on the watchers' bus sweeps: the standings are unchanged, and still owed.
    const survivor = createTallyPublisher({ prisma, bus, flushMs: 20, onError: () => undefined });
    await sleep(60);
    expect(await survivor.sweepStale(50)).toEqual(['c1']);
    await vi.waitFor(() => expect(received).toEqual([{ seq: 1, total: 2 }]));
    sub.close();
  });

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

  it('publishes nothing when the standings did not change', async () => {
    const { state, publisher, received, sub } = setup(5);
    state.votes = 2;
    publisher.markDirty('c1');
    await sleep(30);
    publisher.markDirty('c1'); // e.g. a ballot replaced by an identical one
    await sleep(30);
    expect(received).toEqual([{ seq: 1, total: 2 }]);
    sub.close();
  });

  it('leaves the window to whoever took it (another instance) and retries after it', async () => {
    const { state, publisher, received, sub } = setup(60);
    state.votes = 1;
    Object.assign(state, { seq: 4, updatedAt: new Date(), stateHash: 'published-by-another-instance' });
    publisher.markDirty('c1');
    await sleep(20);
    expect(received).toEqual([]);
    await sleep(80);
    expect(received).toEqual([{ seq: 5, total: 1 }]);
    sub.close();
  });

  it('waits for the fan-out of the previous update on this instance before the next flush', async () => {
    const pacer = createFanoutPacer();
    const { state, publisher, received, sub } = setup(1, pacer);
    const fannedOut = pacer.started(); // an update's fan-out to a large audience is under way
    state.votes = 3;
    publisher.markDirty('c1');
    // However long the flush window is over, nothing is read or published while the loop writes.
    for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setTimeout(resolve, 1));
    expect(state.transactions).toBe(0);
    expect(received).toEqual([]);
    state.votes = 5; // committed while waiting: in the update that follows
    fannedOut();
    await vi.waitFor(() => expect(received).toEqual([{ seq: 1, total: 5 }]));
    expect(state.transactions).toBe(1);
    sub.close();
    await publisher.close();
  });

  it('close() does not wait for the pacing: what is pending is published at once', async () => {
    const pacer = createFanoutPacer();
    const { state, publisher, received, sub } = setup(1, pacer);
    pacer.started(); // a fan-out that never ends before shutdown
    state.votes = 2;
    publisher.markDirty('c1');
    await new Promise((resolve) => setTimeout(resolve, 5));
    const started = Date.now();
    await publisher.close();
    expect(Date.now() - started).toBeLessThan(1_000); // not the 2 s pacing bound
    expect(received).toEqual([{ seq: 1, total: 2 }]);
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

  it('publishes a status change even when the counts are the same', async () => {
    const { state, publisher, received, sub } = setup(5);
    state.votes = 2;
    expect((await publisher.flush('c1')).kind).toBe('published');
    await sleep(10); // past the window
    expect((await publisher.flush('c1')).kind).toBe('unchanged');
    state.status = 'CLOSED';
    const closed = await publisher.flush('c1');
    expect(closed).toMatchObject({ kind: 'published', event: { seq: 2, data: { status: 'CLOSED', totalVotes: 2 } } });
    await sleep(10);
    expect((await publisher.flush('c1')).kind).toBe('unchanged');
    expect(received).toEqual([
      { seq: 1, total: 2 },
      { seq: 2, total: 2 },
    ]);
    sub.close();
  });
});

describe('untilClosed', () => {
  const tally = (seq: number, status: 'OPEN' | 'CLOSED'): TallyEvent => ({
    topic: 'tally:c1',
    seq,
    publishedAt: new Date(0).toISOString(),
    data: { competitionId: 'c1', status, totalVotes: seq, entries: [] },
  });

  function source(events: TallyEvent[]) {
    let returned = false;
    const iterator: AsyncIterableIterator<TallyEvent> = {
      next: async () =>
        events.length > 0
          ? { value: events.shift()!, done: false }
          : new Promise<IteratorResult<TallyEvent>>(() => undefined),
      return: async () => {
        returned = true;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return { iterator, returned: () => returned };
  }

  it('ends after the update that says CLOSED and closes its source', async () => {
    const src = source([tally(1, 'OPEN'), tally(2, 'CLOSED'), tally(3, 'OPEN')]);
    const stream = untilClosed(src.iterator);
    const seen: number[] = [];
    for await (const event of stream) seen.push(event.seq);
    expect(seen).toEqual([1, 2]);
    expect(src.returned()).toBe(true);
  });

  it('closes its source at once when the watcher leaves while it waits', async () => {
    const src = source([tally(1, 'OPEN')]);
    const stream = untilClosed(src.iterator);
    expect((await stream.next()).value?.seq).toBe(1);
    const waiting = stream.next(); // no event will come
    expect(await stream.return!()).toEqual({ value: undefined, done: true });
    expect(src.returned()).toBe(true);
    void waiting;
  });
});
