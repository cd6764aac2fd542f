/**
 * The soak's CI version (issue 15; `npm run soak -- --duration 600` is the long one, figures in
 * RELIABILITY.md): two instances on one PostgreSQL and Redis under 60 s of steady votes (5/s),
 * reactions (5/s), messages (2/s) and churned connections (5/s, 50 live; bench/lib/soak.ts).
 * Zero errors, and:
 * - descriptors settle back: once the load stops and every watcher has closed, each instance holds
 *   at most 10 more than before the watchers opened. 150 connections a minute are churned per
 *   instance, so one descriptor leaked per connection leaves ~150 behind: this is the sharp check,
 *   immune to the noise of sampling while connections open and close;
 * - slopes after a 20 s warm-up stay under what the 10-minute soak's own noise reached on the
 *   shared 2-core machine (40 s windows: RSS up to 95 MB/min, descriptors up to 231/min while the
 *   machine stalled under a load average of ~30; Redis 0.17 MB/min), with margin: RSS 150 MB/min,
 *   descriptors 300/min, Redis 1 MB/min. These catch a runaway (an unbounded backlog, a leak of
 *   hundreds of KB per connection); the 10-minute soak's slopes (RELIABILITY.md) show the small ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSoak } from '../../bench/lib/soak.js';
import { startCluster, type Cluster } from '../support/cluster.js';

const DURATION_S = 60;
const WARMUP_S = 20;
const LIMITS = { rssMbPerMin: 150, fdsPerMin: 300, redisMbPerMin: 1, fdsLeftOver: 10 };

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
    expect(report.counts.votes).toBeGreaterThan(DURATION_S * 2);
    expect(report.counts.reactions).toBeGreaterThan(DURATION_S * 2);
    expect(report.counts.messages).toBeGreaterThan(DURATION_S);
    expect(report.counts.connectionsOpened).toBeGreaterThan(DURATION_S * 2);
    expect(report.counts.eventsReceived).toBeGreaterThan(0);
    expect(samples.filter((s) => s.t >= WARMUP_S).length).toBeGreaterThanOrEqual(10);
    for (const name of ['a', 'b']) {
      expect(report.slopes.rssMbPerMin[name]).toBeLessThan(LIMITS.rssMbPerMin);
      expect(report.slopes.fdsPerMin[name]).toBeLessThan(LIMITS.fdsPerMin);
    }
    expect(report.slopes.redisMbPerMin).toBeLessThan(LIMITS.redisMbPerMin);
  }, 240_000);
});
