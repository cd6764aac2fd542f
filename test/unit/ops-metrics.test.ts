/**
 * The metrics' own arithmetic, without a server: the cluster view's delivery lag p99 over a
 * sliding minute (an injected clock).
 */
import { describe, expect, it } from 'vitest';
import { createMetrics, LAG_WINDOW, SlidingQuantile } from '../../src/modules/ops/ops.metrics.js';
import { parseMetrics, valueOf } from '../support/metrics.js';

describe('delivery lag p99 (serverStats)', () => {
  /** `count` results written `lagMs` after their publish, at the clock's current time. */
  const deliver = (metrics: ReturnType<typeof createMetrics>, clock: { t: number }, lagMs: number, count: number) =>
    metrics.delivered('tallyUpdated', clock.t - lagMs, count);

  it('covers the last minute only: a past stall leaves the window, a new one shows at once', () => {
    const clock = { t: 1_000_000 };
    const metrics = createMetrics({ now: () => clock.t });
    expect(metrics.totals().lagP99Seconds).toBeNull();

    deliver(metrics, clock, 2_000, 100); // a stall: 2 s late
    expect(metrics.totals().lagP99Seconds).toBe(2.5); // its bucket's bound

    clock.t += 30_000;
    deliver(metrics, clock, 1, 1_000); // then quick deliveries: the stall is still a tenth of the minute's
    deliver(metrics, clock, 1, -1); // ignored
    expect(metrics.totals().lagP99Seconds).toBe(2.5);

    // A minute (and the slice it fell in) after the stall, it has left the window.
    clock.t += LAG_WINDOW.windowMs - 30_000 + LAG_WINDOW.sliceMs;
    expect(metrics.totals().lagP99Seconds).toBe(0.001);
    deliver(metrics, clock, 2_000, 50); // a new stall shows at once
    expect(metrics.totals().lagP99Seconds).toBe(2.5);

    clock.t += LAG_WINDOW.windowMs + LAG_WINDOW.sliceMs;
    expect(metrics.totals().lagP99Seconds).toBeNull(); // nothing delivered in the last minute
  });

  it('above the top bucket, the largest lag in the window (not Infinity, which no GraphQL Float holds)', () => {
    const clock = { t: 5_000_000 };
    const metrics = createMetrics({ now: () => clock.t });
    deliver(metrics, clock, 42_000, 5);
    expect(metrics.totals().lagP99Seconds).toBe(42);
    clock.t += LAG_WINDOW.windowMs + LAG_WINDOW.sliceMs;
    deliver(metrics, clock, 12_000, 1);
    expect(metrics.totals().lagP99Seconds).toBe(12);
  });

  it('keeps the Prometheus histogram cumulative since start', async () => {
    const clock = { t: 0 };
    const metrics = createMetrics({ now: () => clock.t });
    deliver(metrics, clock, 2_000, 3);
    clock.t += 10 * LAG_WINDOW.windowMs;
    deliver(metrics, clock, 1, 4);
    const samples = parseMetrics(await metrics.render());
    expect(valueOf(samples, 'ovation_delivery_lag_seconds_count', { field: 'tallyUpdated' })).toBe(7);
    expect(metrics.totals().lagP99Seconds).toBe(0.001);
  });

  it('SlidingQuantile holds a bounded number of slices however long it runs', () => {
    const clock = { t: 0 };
    const window = new SlidingQuantile([1, 2], 10_000, 1_000, () => clock.t);
    for (let i = 0; i < 1_000; i += 1) {
      window.observe(i % 2 === 0 ? 0.5 : 1.5, 1);
      clock.t += 100;
    }
    expect((window as unknown as { slices: unknown[] }).slices.length).toBeLessThanOrEqual(11);
    expect(window.quantile(0.5)).toBe(1);
    expect(window.quantile(0.99)).toBe(2);
  });
});
