/**
 * The vote generator (bench/lib/voters.ts) against a stand-in castVote endpoint on 127.0.0.1:
 * open loop with latency from each vote's due time, the per-second breakdown, client-side queueing,
 * and the separate vote process that a stalled subscriber loop cannot delay.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { assessTrust } from '../../bench/lib/trust.js';
import { runVoters, startVoteWorker, type VoterOptions, type VoteWorker } from '../../bench/lib/voters.js';

const OK = '{"data":{"castVote":{"vote":{"id":"v"}}}}';

interface Endpoint {
  url: string;
  /** performance.now() of each request's arrival. */
  arrivals: number[];
  close(): Promise<void>;
}

/** Answers every castVote after `delayMs(arrivalIndex)` ms. */
async function endpoint(delayMs: (i: number) => number = () => 0): Promise<Endpoint> {
  const arrivals: number[] = [];
  const server = http.createServer((req, res) => {
    const i = arrivals.push(performance.now()) - 1;
    req.resume();
    req.on('end', () => setTimeout(() => res.end(OK), delayMs(i)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    arrivals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const options = (url: string, over: Partial<VoterOptions>): VoterOptions => ({
  graphqlUrl: url,
  competitionId: 'c1',
  submissionIds: ['s1', 's2'],
  secret: 'test-secret',
  rate: 100,
  concurrency: 4,
  sockets: 100,
  startAt: Date.now() + 100,
  durationMs: 1_000,
  maxOutstanding: 10_000,
  graceMs: 5_000,
  runId: 'test',
  ...over,
});

const busyWait = (ms: number): void => {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    /* hold the event loop */
  }
};

let open: Endpoint | undefined;
let worker: VoteWorker | undefined;
afterEach(async () => {
  await worker?.stop();
  worker = undefined;
  await open?.close();
  open = undefined;
});

describe('runVoters, open loop', () => {
  it('sends every vote on schedule although none has been answered yet', async () => {
    // Nothing is answered for 600 ms; 100 votes/s are due meanwhile.
    open = await endpoint(() => 600);
    const report = await runVoters(options(open.url, { rate: 100, durationMs: 1_000 }));
    const first = open.arrivals[0]!;
    const within500 = open.arrivals.filter((t) => t - first < 500).length;
    expect(within500).toBeGreaterThanOrEqual(40); // ~50 due in those 500 ms, unanswered all along
    expect(report).toMatchObject({
      mode: 'open',
      offered: 100,
      sent: 100,
      acked: 100,
      failed: 0,
      notSent: 0,
      unanswered: 0,
    });
    expect(report.clientQueue.votes).toBe(0); // 100 connections: rate × latency is ~60 in flight
    expect(report.latencyMs.p50).toBeGreaterThanOrEqual(590);
  });

  it("times a vote from its due time, so the generator's own stall is in the latency (no coordinated omission)", async () => {
    open = await endpoint();
    const startAt = Date.now() + 100;
    // The generator's loop is held for 300 ms, 200 ms into the schedule: votes due then leave late.
    setTimeout(() => busyWait(300), startAt + 200 - Date.now());
    const report = await runVoters(options(open.url, { startAt, rate: 100, durationMs: 1_000 }));
    expect(report.acked).toBe(100);
    // ~30 of the 100 votes fell due during the stall and left when it ended, late by 0-300 ms:
    // the slowest tenth is late by 200 ms or more. Timed from the send, only the one or two in
    // flight when the stall began would show it.
    expect(report.latencyMs.p90).toBeGreaterThanOrEqual(150);
    expect(report.sendLagMs.max).toBeGreaterThanOrEqual(250);
    expect(report.loopDelayMs.max).toBeGreaterThanOrEqual(250);
    expect(assessTrust({ votes: report, voteBudgetMs: 1_000 }).trustworthy).toBe(false);
  });

  it('breaks the schedule down per second: a slow opening second shows apart from the rest', async () => {
    const startAt = Date.now() + 100;
    let t0 = 0;
    // The first 500 ms of votes wait 300 ms each; later ones are answered at once.
    open = await endpoint((i) => {
      if (i === 0) t0 = performance.now();
      return performance.now() - t0 < 500 ? 300 : 0;
    });
    const report = await runVoters(options(open.url, { startAt, rate: 50, durationMs: 2_000 }));
    expect(report.perSecond.map((s) => [s.second, s.offered, s.acked])).toEqual([
      [0, 50, 50],
      [1, 50, 50],
    ]);
    expect(report.perSecond[0]!.p99).toBeGreaterThanOrEqual(290);
    expect(report.perSecond[1]!.p99).toBeLessThan(200);
  });

  it('counts votes that waited for a connection when the pool is smaller than rate × latency', async () => {
    open = await endpoint(() => 40);
    // 100 votes/s answered in 40 ms need ~4 connections; 2 make them queue client-side.
    const report = await runVoters(options(open.url, { rate: 100, durationMs: 500, sockets: 2 }));
    expect(report.acked).toBe(50);
    expect(report.clientQueue.votes).toBeGreaterThan(20);
    expect(report.serviceMs.p99).toBeLessThan(400);
    const trust = assessTrust({ votes: report, voteBudgetMs: 1_000 });
    expect(trust.reasons.join('\n')).toMatch(/waited for a client socket/);
  });

  it('drops what is still unanswered after the grace period and reports it as unanswered', async () => {
    open = await endpoint((i) => (i < 5 ? 60_000 : 0));
    const report = await runVoters(options(open.url, { rate: 50, durationMs: 1_000, graceMs: 300 }));
    expect(report).toMatchObject({ offered: 50, acked: 45, unanswered: 5, failed: 0 });
    expect(report.perSecond[0]).toMatchObject({ offered: 50, acked: 45, unanswered: 5 });
  });
});

describe('startVoteWorker', () => {
  it('keeps timing votes on schedule while the parent event loop (the subscribers) is stalled', async () => {
    open = await endpoint();
    worker = await startVoteWorker();
    expect(worker.pid).not.toBe(process.pid);
    const startAt = Date.now() + 300;
    const run = worker.run(options(open.url, { startAt, rate: 100, durationMs: 1_500 }));
    // The parent holds its loop for 600 ms in the middle of the schedule, as 10k busy sockets do.
    // The stand-in server runs in this same loop, so the votes due then are answered late, but
    // they leave the worker on time: send lag and the worker's own loop delay stay small.
    setTimeout(() => busyWait(600), startAt + 400 - Date.now());
    const report = await run;
    expect(report.acked).toBe(150);
    expect(report.sendLagMs.p99).toBeLessThan(50);
    expect(report.loopDelayMs.p99).toBeLessThan(50);
    // Requests that left during the stall reached the server in a burst after it.
    expect(report.latencyMs.max).toBeGreaterThanOrEqual(400);
  });
});
