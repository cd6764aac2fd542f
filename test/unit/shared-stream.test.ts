/**
 * The shared stream's delivery paths: results serialised once and written through a transport's
 * direct sink (graphql-ws), conflation and retry while a client is busy, bounded backlogs for
 * event streams, errors through the iterator, and the iterator path for transports without a sink.
 */
import type { ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import { createFanoutPacer } from '../../src/realtime/fanout-pacer.js';
import { createSharedStream, type DirectSink } from '../../src/realtime/shared-subscriptions.js';

/** A source the test pushes results into; `conflate` keeps only the newest unread one (like a tally topic). */
function source(opts: { conflate?: boolean } = {}) {
  const pending: ExecutionResult[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let failure: Error | undefined;
  const iterator: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      for (;;) {
        if (pending.length > 0) return { value: pending.shift()!, done: false };
        if (failure) throw failure;
        if (ended) return { value: undefined, done: true };
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    async return() {
      ended = true;
      wake?.();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return {
    iterator,
    push(result: ExecutionResult) {
      if (opts.conflate) pending.length = 0;
      pending.push(result);
      wake?.();
    },
    fail(error: Error) {
      failure = error;
      wake?.();
    },
    /** The source completes by itself (a tally whose competition closed). */
    end() {
      ended = true;
      wake?.();
    },
    get ended() {
      return ended;
    },
  };
}

/** A sink that records payloads; `busy` makes it refuse until `catchUp()`. */
function sink() {
  const written: Buffer[] = [];
  let retry: (() => void) | undefined;
  const state = { busy: false, closed: false };
  const s: DirectSink = {
    write(result, onRetry) {
      if (state.closed) return 'closed';
      if (state.busy) {
        retry = onRetry;
        return 'busy';
      }
      written.push(result.json());
      return 'sent';
    },
  };
  return {
    sink: s,
    state,
    written,
    payloads: () => written.map((b) => JSON.parse(b.toString()) as ExecutionResult),
    catchUp() {
      state.busy = false;
      const r = retry;
      retry = undefined;
      r?.();
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));
const tally = (seq: number): ExecutionResult => ({ data: { tallyUpdated: { seq } } });

describe('shared stream', () => {
  it('writes each result once-serialised to every direct sink, without resolving their iterators', async () => {
    const src = source();
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => undefined);
    const a = sink();
    const b = sink();
    const itA = stream.attach(a.sink);
    stream.attach(b.sink);
    let resolved = false;
    void itA.next().then(() => (resolved = true));
    src.push(tally(1));
    src.push(tally(2));
    await tick();
    expect(a.payloads()).toEqual([tally(1), tally(2)]);
    expect(b.payloads()).toEqual([tally(1), tally(2)]);
    // The very same bytes for both: serialised once.
    expect(a.written[1]).toBe(b.written[1]);
    expect(resolved).toBe(false);
    await itA.return!();
  });

  it('serves a large audience in slices, every subscriber every result in order', async () => {
    const src = source();
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => undefined);
    const clients = Array.from({ length: 4_500 }, () => sink());
    for (const client of clients) stream.attach(client.sink);
    src.push(tally(1));
    src.push(tally(2));
    let ioRanMidway = false;
    setImmediate(() => (ioRanMidway = clients.at(-1)!.written.length === 0));
    for (let i = 0; i < 10; i += 1) await tick();
    expect(ioRanMidway).toBe(true); // the event loop got a turn before the last subscriber was served
    for (const client of clients) expect(client.payloads()).toEqual([tally(1), tally(2)]);
  });

  /** 1,000 direct subscribers whose writes each cost `writeMs` on the slice clock. */
  function timedAudience(opts: { writeMs: number; pacer: ReturnType<typeof createFanoutPacer> }) {
    const clock = { now: 0 };
    const src = source();
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => undefined, {
      pacer: opts.pacer,
      sliceBudgetMs: 8,
      sliceClock: () => clock.now,
    });
    const clients = Array.from({ length: 1_000 }, () => {
      const client = sink();
      const write = client.sink.write.bind(client.sink);
      client.sink.write = (result, retry) => {
        clock.now += opts.writeMs;
        return write(result, retry);
      };
      return client;
    });
    for (const client of clients) stream.attach(client.sink);
    return { clock, src, clients };
  }

  /** Pushes one result and records how many subscribers had it after each turn of the loop. */
  async function fanOutTurns(
    audience: ReturnType<typeof timedAudience>,
    pacer: ReturnType<typeof createFanoutPacer>,
    otherWork?: () => void,
  ) {
    const { src, clients } = audience;
    // Other work in every turn of the loop, ahead of the fan-out's next slice (as I/O is).
    let working = otherWork !== undefined;
    const work = (): void => {
      if (!working) return;
      otherWork!();
      setImmediate(work);
    };
    if (working) setImmediate(work);
    src.push(tally(1));
    // The first slice is written within the microtasks that follow the push.
    for (let i = 0; i < 20 && clients[0]!.written.length === 0; i += 1) await Promise.resolve();
    let settled = false;
    void pacer.settled(60_000).then(() => (settled = true));
    const served: number[] = [];
    while (clients.at(-1)!.written.length === 0) {
      served.push(clients.filter((c) => c.written.length > 0).length);
      expect(pacer.inProgress()).toBe(1); // publishers wait while the fan-out is under way
      await tick();
    }
    working = false;
    await Promise.resolve();
    expect(settled).toBe(true);
    expect(pacer.inProgress()).toBe(0);
    for (const client of clients) expect(client.payloads()).toEqual([tally(1)]);
    return served;
  }

  it('writes in short slices while a request is being answered, so it is not queued behind the fan-out', async () => {
    const pacer = createFanoutPacer();
    const audience = timedAudience({ writeMs: 0.25, pacer });
    const answered = pacer.requestStarted(); // e.g. a castVote waiting for its group commit
    // 0.25 ms a write: the 8 ms budget is spent after 32 writes, seen at the clock check after 64.
    const served = await fanOutTurns(audience, pacer);
    expect(served.length).toBeGreaterThanOrEqual(15); // 1,000 / 64, not one slice
    expect(served.every((n, i) => i === 0 || n - served[i - 1]! <= 64)).toBe(true);
    answered();
  });

  it('writes in short slices while other work fills the turns between them', async () => {
    const pacer = createFanoutPacer();
    const audience = timedAudience({ writeMs: 0.25, pacer });
    const served = await fanOutTurns(audience, pacer, () => (audience.clock.now += 2)); // 2 ms of other work a turn
    expect(served.length).toBeGreaterThanOrEqual(15);
  });

  it('while connections are arriving, writes 1 ms slices (Node accepts about one per turn of a busy loop)', async () => {
    const pacer = createFanoutPacer();
    const audience = timedAudience({ writeMs: 0.25, pacer });
    // A client accepted in every turn (its I/O runs ahead of the next slice): more are queued.
    const served = await fanOutTurns(audience, pacer, () => pacer.connectionAccepted());
    // Not one long slice after the first (nothing else is waiting): 64 a turn, the clock check.
    expect(served.length).toBeGreaterThanOrEqual(15);
  });

  it('with nothing else waiting, writes long slices after the first', async () => {
    const pacer = createFanoutPacer();
    const audience = timedAudience({ writeMs: 0.25, pacer });
    const served = await fanOutTurns(audience, pacer);
    // The first slice is short (64); the loop then had nothing else to do: the rest in one slice.
    expect(served).toEqual([64]);
  });

  it('reads a conflating source ahead while a sliced fan-out is under way, so no update is skipped', async () => {
    const src = source({ conflate: true });
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => undefined);
    const clients = Array.from({ length: 4_500 }, () => sink());
    for (const client of clients) stream.attach(client.sink);
    src.push(tally(1));
    await new Promise((resolve) => setImmediate(resolve)); // the fan-out of 1 has started, not finished
    expect(clients.at(-1)!.written).toHaveLength(0);
    src.push(tally(2));
    await Promise.resolve();
    src.push(tally(3));
    for (let i = 0; i < 20; i += 1) await tick();
    for (const client of clients) expect(client.payloads()).toEqual([tally(1), tally(2), tally(3)]);
  });

  it('under sustained overload replaces snapshots queued longer than the lag bound by the newest', async () => {
    let clock = 0;
    const src = source({ conflate: true });
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => undefined, {
      maxSnapshotLagMs: 1_000,
      now: () => clock,
    });
    const clients = Array.from({ length: 4_500 }, () => sink());
    for (const client of clients) stream.attach(client.sink);
    src.push(tally(1));
    await new Promise((resolve) => setImmediate(resolve)); // the fan-out of 1 is under way
    expect(clients.at(-1)!.written).toHaveLength(0);
    for (const seq of [2, 3, 4]) {
      src.push(tally(seq));
      for (let i = 0; i < 10; i += 1) await Promise.resolve(); // read ahead, queued behind the fan-out
      clock += 600;
    }
    // 2 and 3 have waited > 1 s with a newer one behind them: obsolete. 4 (600 ms) is not.
    for (let i = 0; i < 30; i += 1) await tick();
    for (const client of clients) expect(client.payloads()).toEqual([tally(1), tally(4)]);
  });

  it('gives a late direct subscriber the latest result first', async () => {
    const src = source();
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => undefined);
    stream.attach(sink().sink);
    src.push(tally(1));
    src.push(tally(2));
    await tick();
    const late = sink();
    stream.attach(late.sink);
    expect(late.payloads()).toEqual([tally(2)]);
  });

  it('keeps only the newest snapshot while a client is busy and sends it once it caught up', async () => {
    const src = source();
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => undefined);
    const slow = sink();
    const fast = sink();
    stream.attach(slow.sink);
    stream.attach(fast.sink);
    src.push(tally(1));
    await tick();
    slow.state.busy = true;
    for (let seq = 2; seq <= 5; seq += 1) src.push(tally(seq));
    await tick();
    expect(fast.payloads().map((r) => (r.data as { tallyUpdated: { seq: number } }).tallyUpdated.seq)).toEqual([
      1, 2, 3, 4, 5,
    ]);
    expect(slow.payloads()).toEqual([tally(1)]);
    slow.catchUp();
    expect(slow.payloads()).toEqual([tally(1), tally(5)]);
  });

  it('keeps every event in order while busy, and cuts off a subscriber maxBuffer events behind', async () => {
    const src = source();
    const stream = createSharedStream(src.iterator, 'events', 3, () => undefined);
    const client = sink();
    stream.attach(client.sink);
    client.state.busy = true;
    src.push(tally(1));
    src.push(tally(2));
    await tick();
    client.catchUp();
    expect(client.payloads()).toEqual([tally(1), tally(2)]);

    const laggard = sink();
    const it = stream.attach(laggard.sink);
    laggard.state.busy = true;
    for (let seq = 3; seq <= 7; seq += 1) src.push(tally(seq));
    await tick();
    // Its last result: RATE_LIMITED with reason SLOW_CONSUMER (it resumes from its cursor), then done.
    const last = await it.next();
    expect(last.value?.errors?.[0]?.originalError).toMatchObject({
      code: 'RATE_LIMITED',
      details: { reason: 'SLOW_CONSUMER', maxQueued: 3 },
    });
    expect((await it.next()).done).toBe(true);
    expect(stream.size()).toBe(1);
  });

  it('when the source completes, ends every subscriber after its last result, a busy one once it caught up', async () => {
    const src = source();
    let emptied = false;
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => (emptied = true));
    const fast = sink();
    const slow = sink();
    const itFast = stream.attach(fast.sink);
    const itSlow = stream.attach(slow.sink);
    const itPlain = stream.attach();
    src.push(tally(1));
    await tick();
    slow.state.busy = true;
    src.push(tally(2)); // the final update
    src.end();
    await tick();
    expect(emptied).toBe(true);
    expect((await itFast.next()).done).toBe(true);
    expect(fast.payloads()).toEqual([tally(1), tally(2)]);
    expect((await itPlain.next()).value).toEqual(tally(2)); // conflated: the newest, then done
    expect((await itPlain.next()).done).toBe(true);

    let slowDone = false;
    const slowNext = itSlow.next().then((r) => (slowDone = r.done === true));
    await tick();
    expect(slowDone).toBe(false); // its final update is not written yet: not complete before it
    slow.catchUp();
    await slowNext;
    expect(slowDone).toBe(true);
    expect(slow.payloads()).toEqual([tally(1), tally(2)]);
    expect(stream.size()).toBe(0);
  });

  it('hands results with errors to the iterator, so the pipeline masks them', async () => {
    const src = source();
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => undefined);
    const client = sink();
    const it = stream.attach(client.sink);
    src.push(tally(1));
    await tick();
    src.fail(new Error('boom'));
    const next = await it.next();
    expect(next.value?.errors?.[0]?.message).toBe('boom');
    expect(client.payloads()).toEqual([tally(1)]);
    expect((await it.next()).done).toBe(true);
  });

  it('without a sink, delivers through the iterator and lets Yoga reuse the serialised JSON', async () => {
    const src = source();
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => undefined);
    const it = stream.attach();
    src.push(tally(1));
    const { value } = await it.next();
    expect(value).toEqual(tally(1));
    const stringify = (value as { stringify?: (v: unknown) => string }).stringify;
    expect(stringify?.(value)).toBe(JSON.stringify(tally(1)));
    expect(JSON.stringify(value)).toBe(JSON.stringify(tally(1))); // not enumerable
  });

  it('ends the source when the last subscriber leaves, and stops writing to a closed sink', async () => {
    const src = source();
    let emptied = false;
    const stream = createSharedStream(src.iterator, 'snapshot', 10, () => (emptied = true));
    const gone = sink();
    const stays = sink();
    const itGone = stream.attach(gone.sink);
    const itStays = stream.attach(stays.sink);
    gone.state.closed = true;
    src.push(tally(1));
    await tick();
    expect(gone.written).toHaveLength(0);
    await itGone.return!();
    expect(emptied).toBe(false);
    await itStays.return!();
    expect(emptied).toBe(true);
    expect(src.ended).toBe(true);
  });
});
