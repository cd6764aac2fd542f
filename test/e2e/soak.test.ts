/**
 * The soak's CI version (issue 15; `npm run soak -- --duration 600` is the long one, figures in
 * RELIABILITY.md): two instances on one PostgreSQL and Redis under 60 s of steady votes,
 * reactions, messages and churned connections (bench/lib/soak.ts). Zero errors, and after a 20 s
 * warm-up the slopes stay under thresholds that a per-connection leak would cross:
 * - file descriptors: 10 connections are churned a second (600 a minute, 300 per instance); one
 *   descriptor leaked per churned connection is +300/min on each instance. The limit, 60/min, is a
 *   fifth of that and well above the noise of sampling while connections open and close;
 * - RSS: a churned connection that leaks what it held (its socket, buffers, subscription: tens of
 *   KB) is several MB/min at 300 a minute; V8's heap moves in steps of a few MB as it grows and
 *   collects, which over 40 s reads as a slope of up to ~10 MB/min either way (on this machine).
 *   The limit is 30 MB/min per instance: it catches a leak of ~100 KB per connection, the 10-minute
 *   soak the smaller ones;
 * - Redis used_memory: 20 votes and 20 reactions a second create keys with TTLs (rate-limit logs,
 *   idempotency, reaction windows) that reach their steady state within the warm-up; a key leaked
 *   per churned connection (a live-subscription or presence entry, ~100 B) is tens of KB/min. The
 *   limit is 1 MB/min: a leak per operation (40/s) of 500 B passes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSoak } from '../../bench/lib/soak.js';
import { startCluster, type Cluster } from '../support/cluster.js';

const DURATION_S = 60;
const WARMUP_S = 20;
const LIMITS = { rssMbPerMin: 30, fdsPerMin: 60, redisMbPerMin: 1 };

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

describe('soak (60 s)', () => {
  it('two instances under steady votes, reactions, messages and churned connections: zero errors, flat RSS, descriptors and Redis memory', async () => {
    const report = await runSoak({
      instances: [
        { name: 'a', graphqlUrl: cluster.a.graphqlUrl, wsUrl: cluster.a.wsUrl, pid: cluster.a.pid },
        { name: 'b', graphqlUrl: cluster.b.graphqlUrl, wsUrl: cluster.b.wsUrl, pid: cluster.b.pid },
      ],
      redisUrl: cluster.redisUrl,
      durationS: DURATION_S,
      warmupS: WARMUP_S,
      sampleEveryS: 2,
    });
    const { samples, ...summary } = report;
    console.log(`[soak] ${JSON.stringify(summary)}`);
    expect(report.firstErrors).toEqual([]);
    // The load ran: every kind of operation and stream did its work.
    expect(report.counts.votes).toBeGreaterThan(DURATION_S * 5);
    expect(report.counts.reactions).toBeGreaterThan(DURATION_S * 5);
    expect(report.counts.messages).toBeGreaterThan(DURATION_S);
    expect(report.counts.connectionsOpened).toBeGreaterThan(DURATION_S * 3);
    expect(report.counts.eventsReceived).toBeGreaterThan(0);
    expect(samples.filter((s) => s.t >= WARMUP_S).length).toBeGreaterThanOrEqual(10);
    for (const name of ['a', 'b']) {
      expect(report.slopes.rssMbPerMin[name]).toBeLessThan(LIMITS.rssMbPerMin);
      expect(report.slopes.fdsPerMin[name]).toBeLessThan(LIMITS.fdsPerMin);
    }
    expect(report.slopes.redisMbPerMin).toBeLessThan(LIMITS.redisMbPerMin);
  }, 240_000);
});
