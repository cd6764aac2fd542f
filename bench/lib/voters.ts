/**
 * castVote over HTTP, one distinct voter (JWT sub) per vote, on a small pool of keep-alive
 * connections. Two modes:
 *  - fixed rate (open loop): vote k is issued at t0 + k/rate whatever the server does; latency
 *    runs from the moment the request is issued (queueing in the connection pool included);
 *    more than `maxOutstanding` unanswered votes and the next ones are not sent (counted);
 *  - max rate (closed loop): `concurrency` workers each send, await, repeat.
 */
import http from 'node:http';
import { Histogram } from './stats.js';
import { signHs256 } from './jwt.js';
import { clientIp, post } from './http.js';
import { CAST_VOTE } from './operations.js';

export interface VoterOptions {
  graphqlUrl: string;
  competitionId: string;
  submissionIds: string[];
  secret: string;
  /** Votes per second; 0 = as fast as `concurrency` workers go. */
  rate: number;
  concurrency: number;
  connections: number;
  durationMs: number;
  maxOutstanding: number;
  /** How long to wait for unanswered votes after the load (ms). */
  graceMs: number;
  runId: string;
}

export interface VoteStats {
  sent: number;
  acked: number;
  failed: number;
  notSent: number;
  /** Still unanswered when the grace period after the load ran out (neither acked nor failed). */
  unanswered: number;
  startedAt: number;
  endedAt: number;
  latency: Histogram;
  errors: Map<string, number>;
  /** Per second of load: [acked, max latency ms]. */
  timeline: [number, number][];
}

export async function runVoters(opts: VoterOptions): Promise<VoteStats> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.rate > 0 ? opts.connections : opts.concurrency });
  const url = new URL(opts.graphqlUrl);
  const stats: VoteStats = {
    sent: 0,
    acked: 0,
    failed: 0,
    notSent: 0,
    unanswered: 0,
    startedAt: Date.now(),
    endedAt: 0,
    latency: new Histogram(),
    errors: new Map(),
    timeline: [],
  };
  let outstanding = 0;
  let k = 0;
  const subs = opts.submissionIds;

  const error = (message: string): void => {
    stats.failed += 1;
    const key = message.slice(0, 200);
    stats.errors.set(key, (stats.errors.get(key) ?? 0) + 1);
  };

  async function vote(): Promise<void> {
    const i = k++;
    const token = signHs256(opts.secret, { sub: `bench-${opts.runId}-${i}` });
    const submissionId = subs[Math.floor(Math.random() * subs.length)]!;
    const body = JSON.stringify({
      query: CAST_VOTE,
      variables: { input: { competitionId: opts.competitionId, submissionId, idempotencyKey: `k-${i}` } },
    });
    stats.sent += 1;
    outstanding += 1;
    const started = performance.now();
    const second = Math.floor((Date.now() - t0) / 1000);
    try {
      const res = await post(agent, url, body, { authorization: `Bearer ${token}`, 'x-forwarded-for': clientIp('voter', i) });
      const ms = performance.now() - started;
      stats.latency.record(ms);
      const slot = (stats.timeline[second] ??= [0, 0]);
      slot[1] = Math.max(slot[1], Math.round(ms));
      if (res.status === 200 && !res.text.includes('"errors"')) {
        stats.acked += 1;
        slot[0] += 1;
      } else error(`HTTP ${res.status}: ${res.text.slice(0, 200)}`);
    } catch (e) {
      error((e as Error).message);
    } finally {
      outstanding -= 1;
    }
  }

  const t0 = Date.now();
  stats.startedAt = t0;
  const end = t0 + opts.durationMs;
  const inflight = new Set<Promise<void>>();
  const track = (p: Promise<void>): void => {
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  };

  if (opts.rate > 0) {
    let due = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = Date.now();
        const until = Math.min(now, end);
        const target = Math.floor(((until - t0) * opts.rate) / 1000);
        while (due < target) {
          due += 1;
          if (outstanding >= opts.maxOutstanding) stats.notSent += 1;
          else track(vote());
        }
        if (now >= end) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, 5);
    });
  } else {
    const worker = async (): Promise<void> => {
      while (Date.now() < end) await vote();
    };
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  }
  stats.endedAt = Date.now();
  // Votes still unanswered get `graceMs` more; after that the counts are frozen.
  await Promise.race([Promise.all([...inflight]), new Promise((r) => setTimeout(r, opts.graceMs).unref())]);
  const frozen: VoteStats = { ...stats, unanswered: outstanding, errors: new Map(stats.errors), timeline: stats.timeline.map((x) => (x ? [x[0], x[1]] : [0, 0])) };
  // Whatever is still queued must not reach the server after this.
  agent.destroy();
  return frozen;
}
