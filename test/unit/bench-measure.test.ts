/**
 * The load generator's measuring pieces (bench/lib): CPU accounting per process group, event-loop
 * delay, the trust verdict, exact percentiles. Linux /proc is needed for the CPU cases.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LoopDelay } from '../../bench/lib/loop-delay.js';
import { cpuSeconds, cpuSplit, type CpuSnapshot } from '../../bench/lib/proc.js';
import { percentiles } from '../../bench/lib/stats.js';
import { kernelNetDelta, parseProtocolCounters, parseSoftnetDrops } from '../../bench/lib/kernel-net.js';
import { assessTrust, GENERATOR_DELAY_LIMIT_MS } from '../../bench/lib/trust.js';
import { socketsFor } from '../../bench/lib/voters.js';

const busyWait = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* hold the event loop */
  }
};

describe('cpuSplit', () => {
  const snap = (t: number, busy: number, irq: number, groups: Record<string, number>): CpuSnapshot => ({
    t,
    machine: { busy, irq, steal: 0, total: Number.NaN },
    groups,
  });

  it('gives each group its share of a core and leaves the unexplained busy time to "other"', () => {
    const a = snap(0, 100, 10, { server: 10, postgres: 5, voteGen: 1 });
    // 2 s: machine busy 3.0 s (150% of a core), server 1.6 s, postgres 0.5 s, vote generator 0.2 s.
    const b = snap(2_000, 103, 10.4, { server: 11.6, postgres: 5.5, voteGen: 1.2 });
    const split = cpuSplit(a, b);
    expect(split.windowS).toBe(2);
    expect(split.pct).toEqual({ server: 80, postgres: 25, voteGen: 10 });
    expect(split.otherPct).toBeCloseTo(35, 5);
    expect(split.machineBusyPct).toBe(150);
    expect(split.softirqPct).toBeCloseTo(20, 5);
  });

  it('never reports negative "other" when tick rounding makes the groups exceed the machine', () => {
    const split = cpuSplit(snap(0, 0, 0, { server: 0 }), snap(1_000, 0.99, 0, { server: 1 }));
    expect(split.otherPct).toBe(0);
  });
});

describe.runIf(existsSync('/proc/self/stat'))('cpuSeconds', () => {
  it("counts a descendant's CPU after it has exited (a PostgreSQL backend that ends mid-run)", async () => {
    const before = { tree: cpuSeconds(process.pid, true), own: cpuSeconds(process.pid, false) };
    // A child that burns 200 ms of its own CPU time (not wall time: the machine may be loaded) and
    // exits; Node reaps it, moving its time into our cutime.
    const burn = 'const e = process.cpuUsage().user + 200_000; while (process.cpuUsage().user < e);';
    const child = spawn(process.execPath, ['-e', burn], { stdio: 'ignore' });
    await new Promise((resolve) => child.once('exit', resolve));
    const after = { tree: cpuSeconds(process.pid, true), own: cpuSeconds(process.pid, false) };
    const descendants = after.tree - before.tree - (after.own - before.own);
    expect(descendants).toBeGreaterThan(0.15);
  }, 60_000);

  it('is NaN for a process that does not exist', () => {
    expect(cpuSeconds(2 ** 22 + 12_345, true)).toBeNaN();
  });
});

describe('LoopDelay', () => {
  it('reports how late the loop ran, the sampling interval not included', async () => {
    const d = new LoopDelay(5).start();
    await new Promise((r) => setTimeout(r, 100));
    busyWait(200);
    await new Promise((r) => setTimeout(r, 100));
    const ms = d.stop();
    expect(ms.max).toBeGreaterThan(150);
    // An idle loop fires its 5 ms timer on time: the median delay is ~0, not ~5.
    expect(ms.p50).toBeLessThan(4);
  });
});

describe('assessTrust', () => {
  const fine = { p50: 0.1, p99: 3, max: 10 };
  const votes = (
    over: Partial<Parameters<typeof assessTrust>[0]['votes']> = {},
  ): Parameters<typeof assessTrust>[0]['votes'] => ({
    loopDelayMs: fine,
    sendLagMs: percentiles([0.5, 1, 2]),
    serviceMs: percentiles([5, 10, 20]),
    clientQueue: { votes: 0, waitMs: percentiles([]) },
    ...over,
  });

  it.each([
    { name: 'both generators on time', input: { subscriberLoopDelayMs: fine, votes: votes() }, reasons: [] },
    {
      name: 'the subscriber process stalled',
      input: { subscriberLoopDelayMs: { p50: 1, p99: 180, max: 1600 }, votes: votes() },
      reasons: [/subscriber generator event-loop delay p99 180 ms/],
    },
    {
      name: 'the vote process stalled',
      input: { votes: votes({ loopDelayMs: { p50: 1, p99: 60, max: 90 } }) },
      reasons: [/vote generator event-loop delay p99 60 ms/],
    },
    {
      name: 'votes left late',
      input: { votes: votes({ sendLagMs: percentiles([1, 2, 80]) }) },
      reasons: [/send lag p99 80 ms/],
    },
    {
      name: 'the pool queued a server that answered in time',
      input: { votes: votes({ clientQueue: { votes: 40, waitMs: percentiles([70, 90]) } }) },
      reasons: [/40 votes waited for a client socket/],
    },
    {
      name: 'votes queued behind a server slower than the budget (its own fault, not the pool’s)',
      input: {
        votes: votes({
          serviceMs: percentiles([900, 2_000, 3_000]),
          clientQueue: { votes: 40, waitMs: percentiles([700, 900]) },
        }),
      },
      reasons: [],
    },
    {
      name: 'the kernel dropped packets on loopback',
      input: {
        votes: votes(),
        kernelNet: { backlogDrops: 395, listenOverflows: 0, synRetransmits: 12, retransmitTimeouts: 30 },
      },
      reasons: [/the kernel dropped 395 packets .*\(12 SYN retransmits/],
    },
    {
      name: 'retransmits without drops (e.g. a peer that went away) do not flag a run',
      input: {
        votes: votes(),
        kernelNet: { backlogDrops: 0, listenOverflows: 0, synRetransmits: 0, retransmitTimeouts: 4 },
      },
      reasons: [],
    },
    {
      name: 'exactly at the limit',
      input: { votes: votes({ loopDelayMs: { p50: 1, p99: GENERATOR_DELAY_LIMIT_MS, max: 70 } }) },
      reasons: [],
    },
  ])('$name', ({ input, reasons }) => {
    const trust = assessTrust({ ...input, voteBudgetMs: 1_000 });
    expect(trust.trustworthy).toBe(reasons.length === 0);
    expect(trust.reasons).toHaveLength(reasons.length);
    reasons.forEach((re, i) => expect(trust.reasons[i]).toMatch(re));
  });
});

describe('kernel network counters', () => {
  it('sums the dropped column of softnet_stat (hexadecimal, per CPU)', () => {
    const text = '023aaaf0 0000018b 0000000f 00000000\n02118675 00000002 00000038 00000000\n';
    expect(parseSoftnetDrops(text)).toBe(0x18b + 2);
  });

  it('reads a protocol block of /proc/net/netstat by name', () => {
    const text = 'TcpExt: SyncookiesSent ListenOverflows TCPTimeouts\nTcpExt: 0 7 40\nIpExt: InNoRoutes\nIpExt: 0\n';
    const counters = parseProtocolCounters(text, 'TcpExt');
    expect(counters.get('ListenOverflows')).toBe(7);
    expect(counters.get('TCPTimeouts')).toBe(40);
    expect(kernelNetDelta(undefined, undefined)).toBeNull();
  });
});

describe('percentiles and socketsFor', () => {
  it('takes nearest-rank percentiles of unsorted values', () => {
    const p = percentiles(Array.from({ length: 100 }, (_, i) => 100 - i));
    expect(p).toMatchObject({ count: 100, min: 1, p50: 50, p90: 90, p99: 99, max: 100, mean: 50.5 });
    expect(percentiles([]).p99).toBeNaN();
  });

  it.each([
    { rate: 500, budgetMs: 1_000, expected: 500 },
    { rate: 1_000, budgetMs: 1_000, expected: 1_000 },
    { rate: 50, budgetMs: 1_000, expected: 50 },
    { rate: 5, budgetMs: 500, expected: 16 },
  ])('sizes the vote pool for rate × budget: $rate/s × $budgetMs ms → $expected', ({ rate, budgetMs, expected }) => {
    expect(socketsFor(rate, budgetMs)).toBe(expected);
  });
});
