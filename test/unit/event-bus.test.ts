import { describe, expect, it } from 'vitest';
import { createEventBus, SlowSubscriberError, type BusEventTarget } from '../../src/realtime/event-bus.js';
import { snapshotThenLive } from '../../src/realtime/stream.js';
import { createBus } from '../../src/stores.js';
import { createLogger } from '../../src/infra/logger.js';
import type { TallyEvent } from '../../src/modules/voting/voting.events.js';

const event = (seq: number, total = seq): TallyEvent => ({
  topic: 'tally:c1',
  seq,
  publishedAt: new Date(0).toISOString(),
  data: { competitionId: 'c1', status: 'OPEN', totalVotes: total, entries: [] },
});

function memoryBus() {
  return createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => Promise.resolve() });
}

describe('event bus', () => {
  it('delivers events of its own entity topic only, in order', async () => {
    const bus = memoryBus();
    const sub = bus.subscribe('tally', 'c1');
    bus.publish('tally', 'c2', event(9));
    bus.publish('tally', 'c1', event(1));
    bus.publish('tally', 'c1', event(2));
    expect((await sub.next()).value?.seq).toBe(1);
    expect((await sub.next()).value?.seq).toBe(2);
    sub.close();
    expect((await sub.next()).done).toBe(true);
    expect(bus.size()).toBe(0);
  });

  it('conflates to the newest event for snapshot topics', async () => {
    const bus = memoryBus();
    const sub = bus.subscribe('tally', 'c1', { conflate: true });
    for (let seq = 1; seq <= 5; seq += 1) bus.publish('tally', 'c1', event(seq));
    expect((await sub.next()).value?.seq).toBe(5);
    sub.close();
  });

  it('cuts off a subscriber that falls maxBuffer events behind', async () => {
    const bus = memoryBus();
    const sub = bus.subscribe('tally', 'c1', { maxBuffer: 3 });
    for (let seq = 1; seq <= 4; seq += 1) bus.publish('tally', 'c1', event(seq));
    // Buffered events are still delivered, then the failure.
    for (let seq = 1; seq <= 3; seq += 1) expect((await sub.next()).value?.seq).toBe(seq);
    await expect(sub.next()).rejects.toBeInstanceOf(SlowSubscriberError);
  });

  it("the in-process bus takes thousands of one topic's subscribers without a leak warning", async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.name);
    process.on('warning', onWarning);
    const bus = createBus(undefined, createLogger({ level: 'silent' }));
    const subs = Array.from({ length: 2_000 }, () => bus.subscribe('tally', 'c1'));
    await new Promise((resolve) => setImmediate(resolve)); // warnings are emitted on the next tick
    process.off('warning', onWarning);
    expect(warnings).toEqual([]);
    for (const sub of subs) sub.close();
  });

  it('closeAll ends a subscriber that is waiting for an event', async () => {
    const bus = memoryBus();
    const sub = bus.subscribe('tally', 'c1');
    const pending = sub.next();
    bus.closeAll();
    expect(await pending).toEqual({ value: undefined, done: true });
  });
});

describe('snapshotThenLive', () => {
  it('yields the snapshot first, then only newer events', async () => {
    const bus = memoryBus();
    const sub = bus.subscribe('tally', 'c1');
    // Published between subscribing and the snapshot: older than or equal to it, so dropped.
    bus.publish('tally', 'c1', event(3));
    const stream = snapshotThenLive(sub, async () => event(4));
    expect((await stream.next()).value?.seq).toBe(4);
    bus.publish('tally', 'c1', event(4));
    bus.publish('tally', 'c1', event(6));
    bus.publish('tally', 'c1', event(5)); // late, from another instance
    bus.publish('tally', 'c1', event(7));
    expect((await stream.next()).value?.seq).toBe(6);
    expect((await stream.next()).value?.seq).toBe(7);
  });

  it('return() releases a pending next() and unsubscribes at once', async () => {
    const bus = memoryBus();
    const stream = snapshotThenLive(bus.subscribe('tally', 'c1'), async () => event(1));
    await stream.next();
    const pending = stream.next();
    await stream.return?.();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(bus.size()).toBe(0);
  });

  it('waits for the broker before reading the snapshot', async () => {
    let release!: () => void;
    const ready = new Promise<void>((resolve) => (release = resolve));
    const bus = createEventBus({ eventTarget: new EventTarget() as BusEventTarget, barrier: () => ready });
    let snapshotRead = false;
    const stream = snapshotThenLive(bus.subscribe('tally', 'c1'), async () => {
      snapshotRead = true;
      return event(1);
    });
    const first = stream.next();
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(snapshotRead).toBe(false);
    release();
    expect((await first).value?.seq).toBe(1);
  });
});
