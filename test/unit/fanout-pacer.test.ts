/** The fan-out pacer: publishers wait for fan-outs in progress, never longer than their bound. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createFanoutPacer } from '../../src/realtime/fanout-pacer.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('fan-out pacer', () => {
  it('settles at once when nothing is being fanned out', async () => {
    const pacer = createFanoutPacer();
    let settled = false;
    void pacer.settled(10_000).then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(true);
  });

  it('settles when the last fan-out in progress ends, and counts each end once', async () => {
    const pacer = createFanoutPacer();
    const endA = pacer.started();
    const endB = pacer.started();
    let settled = false;
    void pacer.settled(10_000).then(() => (settled = true));
    endA();
    endA(); // a second call of the same end does not count
    await Promise.resolve();
    expect(pacer.inProgress()).toBe(1);
    expect(settled).toBe(false);
    endB();
    await Promise.resolve();
    expect(pacer.inProgress()).toBe(0);
    expect(settled).toBe(true);
  });

  it('lets a publisher go after its bound even when a fan-out never ends', async () => {
    vi.useFakeTimers();
    const pacer = createFanoutPacer();
    pacer.started();
    let settled = false;
    void pacer.settled(2_000).then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(1_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBe(true);
  });
});
