import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/errors.js';
import { createEventBus, type BusEventTarget, type TopicSubscription } from '../../src/realtime/event-bus.js';
import { resumableStream, type TopicHistory } from '../../src/realtime/resume.js';
import type { RealtimeEvent } from '../../src/realtime/topics.js';

interface Data {
  n: number;
}
type Ev = RealtimeEvent<Data>;

const ev = (seq: number): Ev => ({ topic: 'offers:s1', seq, publishedAt: new Date(0).toISOString(), data: { n: seq } });

/** A topic whose committed events are kept from `oldest` on (older ones pruned). */
function fakeTopic() {
  const kept = new Map<number, Ev>();
  let latest = 0;
  const reads: [number, number][] = [];
  const history: TopicHistory<Data> = {
    async read(after, upTo, limit) {
      reads.push([after, upTo]);
      const out: Ev[] = [];
      for (let s = after + 1; s <= upTo && out.length < limit; s += 1) if (kept.has(s)) out.push(kept.get(s)!);
      return out;
    },
    latest: async () => latest,
  };
  return {
    history,
    reads,
    /** Commits seq latest+1 (kept in the history) and returns its event; not published. */
    commit(): Ev {
      latest += 1;
      const e = ev(latest);
      kept.set(latest, e);
      return e;
    },
    prune(upTo: number) {
      for (const s of [...kept.keys()]) if (s <= upTo) kept.delete(s);
    },
  };
}

function setup(opts: { maxBuffer?: number } = {}) {
  const bus = createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });
  const topic = fakeTopic();
  let subscriptions = 0;
  const subscribe = () => {
    subscriptions += 1;
    return bus.subscribe('offers', 's1', { maxBuffer: opts.maxBuffer }) as unknown as TopicSubscription<Ev>;
  };
  const publish = (e: Ev) => bus.publish('offers', 's1', e as never);
  return { bus, topic, subscribe, publish, subscriptions: () => subscriptions };
}

async function take(stream: AsyncIterator<Ev>, n: number): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < n; i += 1) {
    const { value, done } = await stream.next();
    if (done) break;
    seqs.push(value.seq);
  }
  return seqs;
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return error instanceof AppError ? `${error.code}:${String(error.details['reason'])}` : String(error);
  }
}

describe('resumableStream', () => {
  it('without a cursor, delivers live events from the latest seq on', async () => {
    const { topic, subscribe, publish } = setup();
    topic.commit();
    topic.commit();
    const stream = await resumableStream({ subscribe, history: topic.history, afterSeq: null });
    publish(topic.commit());
    publish(topic.commit());
    expect(await take(stream, 2)).toEqual([3, 4]);
    await stream.return!();
  });

  it('replays every event after the cursor, then live ones, each once, in order', async () => {
    const { topic, subscribe, publish } = setup();
    for (let i = 0; i < 5; i += 1) topic.commit();
    const stream = await resumableStream({ subscribe, history: topic.history, afterSeq: 2, pageSize: 2 });
    // Published live while the replay is still ahead of it: delivered once.
    const six = topic.commit();
    publish(six);
    publish(six);
    const seven = topic.commit();
    publish(seven);
    expect(await take(stream, 5)).toEqual([3, 4, 5, 6, 7]);
    await stream.return!();
  });

  it('refuses a cursor ahead of the topic at once (RESYNC_REQUIRED, AHEAD)', async () => {
    const { topic, subscribe, bus } = setup();
    topic.commit();
    expect(await codeOf(resumableStream({ subscribe, history: topic.history, afterSeq: 2 }))).toBe(
      'RESYNC_REQUIRED:AHEAD',
    );
    expect(bus.size()).toBe(0);
  });

  it('refuses a cursor whose events are no longer kept at once (RESYNC_REQUIRED, NOT_KEPT)', async () => {
    const { topic, subscribe, bus } = setup();
    for (let i = 0; i < 5; i += 1) topic.commit();
    topic.prune(3);
    expect(await codeOf(resumableStream({ subscribe, history: topic.history, afterSeq: 2 }))).toBe(
      'RESYNC_REQUIRED:NOT_KEPT',
    );
    // The cursor just before what is kept still resumes.
    const stream = await resumableStream({ subscribe, history: topic.history, afterSeq: 3 });
    expect(await take(stream, 2)).toEqual([4, 5]);
    await stream.return!();
    expect(bus.size()).toBe(0);
  });

  it('accepts a cursor equal to the latest seq (nothing missed) and refuses a negative or fractional one', async () => {
    const { topic, subscribe } = setup();
    topic.commit();
    const stream = await resumableStream({ subscribe, history: topic.history, afterSeq: 1 });
    await stream.return!();
    expect(await codeOf(resumableStream({ subscribe, history: topic.history, afterSeq: -1 }))).toBe(
      'BAD_USER_INPUT:undefined',
    );
    expect(await codeOf(resumableStream({ subscribe, history: topic.history, afterSeq: 1.5 }))).toBe(
      'BAD_USER_INPUT:undefined',
    );
  });

  it('fills a live gap from the history when the missing seq does not arrive in time', async () => {
    const { topic, subscribe, publish } = setup();
    const stream = await resumableStream({ subscribe, history: topic.history, afterSeq: null, gapWaitMs: 20 });
    publish(topic.commit()); // 1
    topic.commit(); // 2: committed, its publish is lost
    publish(topic.commit()); // 3
    expect(await take(stream, 3)).toEqual([1, 2, 3]);
    expect(topic.reads).toContainEqual([1, 2]);
    await stream.return!();
  });

  it('reorders live events that arrive out of seq order without touching the history', async () => {
    const { topic, subscribe, publish } = setup();
    const stream = await resumableStream({ subscribe, history: topic.history, afterSeq: null, gapWaitMs: 5_000 });
    const one = topic.commit();
    const two = topic.commit();
    publish(two);
    publish(one);
    expect(await take(stream, 2)).toEqual([1, 2]);
    expect(topic.reads).toEqual([]);
    await stream.return!();
  });

  it('fails with RESYNC_REQUIRED instead of skipping a seq the history no longer has', async () => {
    const { topic, subscribe, publish } = setup();
    const stream = await resumableStream({ subscribe, history: topic.history, afterSeq: null, gapWaitMs: 10 });
    publish(topic.commit()); // 1
    topic.commit(); // 2: lost on the bus…
    topic.prune(2); // …and gone from the history
    publish(topic.commit()); // 3
    expect(await take(stream, 1)).toEqual([1]);
    expect(await codeOf(stream.next())).toBe('RESYNC_REQUIRED:NOT_KEPT');
    expect((await stream.next()).done).toBe(true);
  });

  it('subscribes again and catches up from the history when the bus cuts it off for falling behind', async () => {
    const { topic, subscribe, publish, subscriptions, bus } = setup({ maxBuffer: 3 });
    const stream = await resumableStream({ subscribe, history: topic.history, afterSeq: null });
    for (let i = 0; i < 10; i += 1) publish(topic.commit());
    expect(await take(stream, 10)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(subscriptions()).toBe(2);
    publish(topic.commit());
    expect(await take(stream, 1)).toEqual([11]);
    await stream.return!();
    expect(bus.size()).toBe(0);
  });

  it('skips what the subscriber does not get but keeps its position', async () => {
    const { topic, subscribe, publish } = setup();
    for (let i = 0; i < 4; i += 1) topic.commit();
    const stream = await resumableStream({
      subscribe,
      history: topic.history,
      afterSeq: 0,
      skip: (e) => e.seq % 2 === 0,
    });
    publish(topic.commit());
    publish(topic.commit());
    publish(topic.commit());
    expect(await take(stream, 3)).toEqual([1, 3, 5]);
    await stream.return!();
  });

  it('return() closes the live subscription at once, also while waiting, and finishes once', async () => {
    const { topic, subscribe, bus } = setup();
    let finished = 0;
    const stream = await resumableStream({
      subscribe,
      history: topic.history,
      afterSeq: null,
      onFinish: () => (finished += 1),
    });
    const waiting = stream.next();
    await stream.return!();
    expect((await waiting).done).toBe(true);
    await stream.return!();
    expect(bus.size()).toBe(0);
    expect(finished).toBe(1);
  });
});
