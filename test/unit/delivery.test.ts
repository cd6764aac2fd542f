import type { ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import { boundedDelivery, type DeliveryStats } from '../../src/realtime/delivery.js';

/** A source whose results the test pushes; it records when it was returned. */
function source() {
  const queue: ExecutionResult[] = [];
  let waiting: ((r: IteratorResult<ExecutionResult>) => void) | undefined;
  let returned = false;
  const iterator: AsyncIterator<ExecutionResult> = {
    next: () =>
      queue.length > 0
        ? Promise.resolve({ value: queue.shift()!, done: false })
        : new Promise((resolve) => (waiting = resolve)),
    return: async () => {
      returned = true;
      waiting?.({ value: undefined, done: true });
      return { value: undefined, done: true };
    },
  };
  return {
    iterator,
    push(n: number) {
      const value = { data: { n } };
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w({ value, done: false });
      } else queue.push(value);
    },
    returned: () => returned,
  };
}

const tick = async () => {
  for (let i = 0; i < 20; i += 1) await Promise.resolve();
};
const n = (r: IteratorResult<ExecutionResult>) => (r.value?.data as { n: number } | undefined)?.n;

function setup(policy: Parameters<typeof boundedDelivery>[1]) {
  const src = source();
  const client = { backlog: 0 };
  const stats: DeliveryStats = { held: 0, maxHeld: 0, slowConsumers: 0 };
  const delivery = boundedDelivery(src.iterator, policy, {
    clientBacklog: () => client.backlog,
    maxClientBufferBytes: 100,
    stats,
  });
  return { src, client, stats, delivery };
}

describe('boundedDelivery', () => {
  it('passes results straight through while the client keeps up', async () => {
    const { src, delivery, stats } = setup({ kind: 'events', maxQueued: 2 });
    for (let i = 1; i <= 5; i += 1) {
      src.push(i);
      expect(n(await delivery.next())).toBe(i);
    }
    expect(stats).toEqual({ held: 0, maxHeld: 1, slowConsumers: 0 });
  });

  it('snapshot fields: a client that is behind gets the newest state when it catches up, nothing in between', async () => {
    const { src, client, delivery, stats } = setup({ kind: 'snapshot' });
    client.backlog = 1_000;
    const next = delivery.next();
    for (let i = 1; i <= 50; i += 1) src.push(i);
    await tick();
    expect(stats.held).toBe(1);
    client.backlog = 0;
    expect(n(await next)).toBe(50);
    expect(stats.slowConsumers).toBe(0);
  });

  it('event fields: holds up to maxQueued in order, then ends with RATE_LIMITED (SLOW_CONSUMER) and stops its source', async () => {
    const { src, client, delivery, stats } = setup({ kind: 'events', maxQueued: 3 });
    client.backlog = 1_000;
    const next = delivery.next();
    for (let i = 1; i <= 3; i += 1) src.push(i);
    await tick();
    expect(stats.held).toBe(3);
    client.backlog = 0;
    expect([n(await next), n(await delivery.next()), n(await delivery.next())]).toEqual([1, 2, 3]);

    client.backlog = 1_000;
    const late = delivery.next();
    for (let i = 4; i <= 8; i += 1) src.push(i);
    await tick();
    expect(stats.held).toBe(1); // only the error waits: memory stays bounded
    client.backlog = 0;
    const ended = await late;
    expect(ended.value?.errors?.[0]?.originalError).toMatchObject({
      code: 'RATE_LIMITED',
      retryable: true,
      details: { reason: 'SLOW_CONSUMER', maxQueued: 3, retryAfterMs: 1_000 },
    });
    expect((await delivery.next()).done).toBe(true);
    expect(src.returned()).toBe(true);
    expect(stats.slowConsumers).toBe(1);
  });

  it('return() stops a client that waits to catch up, and the source', async () => {
    const { src, client, delivery, stats } = setup({ kind: 'events', maxQueued: 10 });
    client.backlog = 1_000;
    src.push(1);
    const next = delivery.next();
    await tick();
    await delivery.return!();
    expect((await next).done).toBe(true);
    expect(src.returned()).toBe(true);
    expect(stats.held).toBe(0);
  });
});
