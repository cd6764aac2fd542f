/**
 * The metrics' own arithmetic, without a server: the cluster view's delivery lag p99 over a
 * sliding minute (an injected clock), and the merge of cluster workers' series (ops.metrics.aggregator.ts).
 */
import { describe, expect, it } from 'vitest';
import {
  createMetrics,
  LAG_WINDOW,
  SlidingQuantile,
  type ScrapeSources,
} from '../../src/modules/ops/ops.metrics.registry.js';
import { mergeWorkerMetrics } from '../../src/modules/ops/ops.metrics.aggregator.js';
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

describe('WORKERS > 1: one scrape merges the workers (mergeWorkerMetrics)', () => {
  const sources = (redisUp: boolean): ScrapeSources => ({
    connections: () => ({ ws: 2, sse: 1, 'graphql-sse': 0 }),
    bufferedBytes: () => ({ ws: 10, sse: 0, 'graphql-sse': 0 }),
    heldResults: () => 0,
    probes: {
      database: () => Promise.resolve(),
      redis: () => (redisUp ? Promise.resolve() : Promise.reject(new Error('down'))),
    },
  });

  it('sums counters, histograms and count gauges; keeps process series per worker; dependency_up is the minimum', async () => {
    const one = createMetrics();
    const two = createMetrics();
    one.attach(sources(true));
    two.attach(sources(false));
    for (let i = 0; i < 3; i += 1) one.operation('mutation', 'castVote', 'OK', 0.01);
    for (let i = 0; i < 2; i += 1) two.operation('mutation', 'castVote', 'OK', 0.2);
    two.rateLimited('reactions', true);
    one.delivered('tallyUpdated', Date.now(), 1000);
    two.delivered('tallyUpdated', Date.now(), 500);

    const merged = parseMetrics(
      await mergeWorkerMetrics([
        { worker: 1, metrics: await one.registry.getMetricsAsJSON() },
        { worker: 2, metrics: await two.registry.getMetricsAsJSON() },
      ]),
    );
    const vote = { type: 'mutation', name: 'castVote' };
    expect(valueOf(merged, 'ovation_graphql_operations_total', { ...vote, code: 'OK' })).toBe(5);
    expect(valueOf(merged, 'ovation_graphql_operation_duration_seconds_count', vote)).toBe(5);
    expect(valueOf(merged, 'ovation_graphql_operation_duration_seconds_bucket', { ...vote, le: '0.01' })).toBe(3);
    expect(valueOf(merged, 'ovation_graphql_operation_duration_seconds_bucket', { ...vote, le: '0.25' })).toBe(5);
    expect(valueOf(merged, 'ovation_rate_limit_strikes_total', { rule: 'reactions' })).toBe(1);
    expect(valueOf(merged, 'ovation_events_delivered_total', { field: 'tallyUpdated' })).toBe(1500);
    expect(valueOf(merged, 'ovation_delivery_lag_seconds_count', { field: 'tallyUpdated' })).toBe(1500);
    expect(valueOf(merged, 'ovation_connections', { transport: 'ws' })).toBe(4);
    expect(valueOf(merged, 'ovation_dependency_up', { dependency: 'database' })).toBe(1);
    expect(valueOf(merged, 'ovation_dependency_up', { dependency: 'redis' })).toBe(0);

    const keys = [...merged.keys()];
    for (const name of ['ovation_process_resident_memory_bytes', 'ovation_process_start_time_seconds'])
      expect(keys.filter((key) => key.startsWith(`${name}{`) || key === name).sort()).toEqual([
        `${name}{worker="1"}`,
        `${name}{worker="2"}`,
      ]);
    expect(keys.filter((key) => key.startsWith('ovation_nodejs_eventloop_lag_p99_seconds'))).toHaveLength(2);
    // No app series is split by worker.
    expect(keys.filter((key) => key.includes('worker=') && !/^ovation_(process|nodejs)_/.test(key))).toEqual([]);
  });
});
