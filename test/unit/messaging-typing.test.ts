/** TypingStore semantics on the memory implementation, with fake timers (hand-computed times). */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMemoryTypingStore } from '../../src/modules/messaging/messaging.typing.store.memory.js';
import type { TypingChange, TypingStore } from '../../src/modules/messaging/messaging.typing.store.js';

describe('memory typing store', () => {
  let store: TypingStore;
  let expired: TypingChange[];

  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
    expired = [];
    store = createMemoryTypingStore({ ttlMs: 5_000 });
    store.onExpired((change) => expired.push(change));
  });
  afterEach(async () => {
    await store.close();
    vi.useRealTimers();
  });

  it('starts with a change to publish, expires after the TTL with exactly one isTyping false', async () => {
    const started = await store.start('c1', 'u1');
    expect(started).toEqual({
      outcome: 'started',
      change: { conversationId: 'c1', userId: 'u1', isTyping: true, seq: 1 },
    });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(expired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(expired).toEqual([{ conversationId: 'c1', userId: 'u1', isTyping: false, seq: 2 }]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(expired).toHaveLength(1);
    // Already expired: stopping has nothing to publish.
    expect(await store.stop('c1', 'u1')).toBeNull();
  });

  it('a refresh extends the TTL and publishes nothing', async () => {
    await store.start('c1', 'u1');
    await vi.advanceTimersByTimeAsync(3_000);
    expect(await store.start('c1', 'u1')).toEqual({ outcome: 'refreshed' });
    await vi.advanceTimersByTimeAsync(4_999); // 7999 ms after the start, 4999 after the refresh
    expect(expired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(expired).toHaveLength(1);
  });

  it('stop publishes false once and cancels the expiry', async () => {
    await store.start('c1', 'u1');
    expect(await store.stop('c1', 'u1')).toEqual({ conversationId: 'c1', userId: 'u1', isTyping: false, seq: 2 });
    expect(await store.stop('c1', 'u1')).toBeNull();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(expired).toEqual([]);
  });

  it('allows one published start per second per user and conversation', async () => {
    expect((await store.start('c1', 'u1')).outcome).toBe('started');
    await store.stop('c1', 'u1');
    await vi.advanceTimersByTimeAsync(400);
    expect(await store.start('c1', 'u1')).toEqual({ outcome: 'throttled', retryAfterMs: 600 });
    // Other users and other conversations are not affected.
    expect((await store.start('c1', 'u2')).outcome).toBe('started');
    expect((await store.start('c2', 'u1')).outcome).toBe('started');
    await vi.advanceTimersByTimeAsync(599);
    expect((await store.start('c1', 'u1')).outcome).toBe('throttled');
    await vi.advanceTimersByTimeAsync(1);
    expect((await store.start('c1', 'u1')).outcome).toBe('started');
  });

  it('a flood of toggles publishes at most two changes per second', async () => {
    const published: TypingChange[] = [];
    for (let ms = 0; ms < 3_000; ms += 50) {
      const started = await store.start('c1', 'u1');
      if (started.outcome === 'started') published.push(started.change);
      const stopped = await store.stop('c1', 'u1');
      if (stopped) published.push(stopped);
      await vi.advanceTimersByTimeAsync(50);
    }
    expect(published.filter((c) => c.isTyping)).toHaveLength(3);
    expect(published.filter((c) => !c.isTyping)).toHaveLength(3);
  });

  it('numbers changes per conversation in the order they were applied, expiries included', async () => {
    await store.start('c1', 'u1'); // 1
    await store.start('c1', 'u2'); // 2
    await store.start('c2', 'u1'); // c2: 1
    await store.stop('c1', 'u2'); // 3
    await vi.advanceTimersByTimeAsync(5_000);
    expect(expired.map((c) => [c.conversationId, c.userId, c.seq]).sort()).toEqual([
      ['c1', 'u1', 4],
      ['c2', 'u1', 2],
    ]);
  });

  it('close stops every timer', async () => {
    await store.start('c1', 'u1');
    await store.close();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(expired).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});
