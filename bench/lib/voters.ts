/**
 * castVote over HTTP, one distinct voter (JWT sub) per vote. bench/run.ts calls this in its own
 * process (vote-process.ts), whose event loop holds no subscriber socket: 10k busy subscriber
 * sockets stall a Node loop for up to 1.6 s, and votes sent from that loop would time the stall.
 *
 * Two modes:
 *  - open loop (rate > 0): vote k is due at startAt + k/rate and is sent then, whether or not
 *    earlier votes were answered. Its latency runs from that due time, not from when the request
 *    actually left: a generator that runs late, or a request that waits for a free connection,
 *    adds to the latency instead of hiding a server stall (coordinated omission);
 *  - closed loop (rate 0): `concurrency` workers each send, await, repeat; latency from the send.
 *
 * The keep-alive agent gets `sockets` connections at most, sized by the caller to the concurrency
 * a server answering in time needs (rate × latency budget, see socketsFor), so the client never
 * queues a server that keeps up. A vote sent while every socket is busy waits for one; that is
 * counted (`clientQueue`) with the service time (socket assigned → answer), so a run can tell a
 * slow server from a small pool.
 *
 * Every vote is logged (due time, send lag, socket wait, latency, outcome) in typed arrays, so the
 * result carries exact percentiles overall and per second of the schedule: the first second of
 * voting is what an event's opening looks like.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { stopChild, trackChild } from './children.js';
import { CAST_VOTE } from './operations.js';
import { clientIp, post } from './http.js';
import { signHs256 } from './jwt.js';
import { LoopDelay, type LoopDelayMs } from './loop-delay.js';
import { percentiles, type Percentiles } from './stats.js';

export interface VoterOptions {
  graphqlUrl: string;
  competitionId: string;
  submissionIds: string[];
  secret: string;
  /** Votes per second; 0 = as fast as `concurrency` workers go (closed loop). */
  rate: number;
  concurrency: number;
  /** Keep-alive agent's maxSockets (open loop; the closed loop uses `concurrency`). */
  sockets: number;
  /** Epoch ms at which the schedule starts (bench/run.ts aligns its own timeline on it). */
  startAt: number;
  durationMs: number;
  /** Safety bound on memory: beyond this many unanswered votes the next due ones are not sent (counted). */
  maxOutstanding: number;
  /** How long to wait for unanswered votes after the schedule ends (ms). */
  graceMs: number;
  /** Request timeout (ms): a vote unanswered after this fails. */
  timeoutMs?: number;
  runId: string;
}

/** One second of the schedule (votes by the second they were due in). */
export interface VoteSecond {
  second: number;
  offered: number;
  acked: number;
  failed: number;
  notSent: number;
  unanswered: number;
  /** Latency of the votes acknowledged, from their due time (ms). */
  p50: number;
  p99: number;
  max: number;
  /** Worst lateness of the generator itself in this second (due → request issued, ms). */
  sendLagMax: number;
}

export interface VoteReport {
  mode: 'open' | 'closed';
  rate: number;
  sockets: number;
  /** Open loop: votes due during the schedule; closed loop: votes sent. */
  offered: number;
  sent: number;
  acked: number;
  failed: number;
  notSent: number;
  /** Still unanswered when the grace period ran out (neither acked nor failed). */
  unanswered: number;
  startedAt: number;
  endedAt: number;
  /** Acknowledged votes: due time (open loop) or send (closed loop) → answer. */
  latencyMs: Percentiles;
  /** Due time → request issued: how late the generator itself ran. */
  sendLagMs: Percentiles;
  /** Acknowledged votes: socket assigned → answer (the server's part, loopback included). */
  serviceMs: Percentiles;
  /** Votes sent while every socket was busy, and how long those waited for one. */
  clientQueue: { votes: number; waitMs: Percentiles };
  /** This process's event-loop delay over the schedule. */
  loopDelayMs: LoopDelayMs;
  perSecond: VoteSecond[];
  errors: Record<string, number>;
}

/**
 * Connections a keep-alive pool needs so that a server answering within `budgetMs` never waits
 * for the client: by Little's law, rate × latency requests are in flight; at least `min`.
 */
export function socketsFor(rate: number, budgetMs: number, min = 16): number {
  return Math.max(min, Math.ceil((rate * budgetMs) / 1000));
}

const PENDING = 0;
const ACKED = 1;
const FAILED = 2;
const NOT_SENT = 3;

/** Per-vote log in growable typed arrays (times in ms, relative to the schedule's start). */
class VoteLog {
  n = 0;
  due = new Float64Array(0);
  sendLag = new Float64Array(0);
  socketWait = new Float64Array(0);
  latency = new Float64Array(0);
  service = new Float64Array(0);
  outcome = new Uint8Array(0);

  constructor(capacity: number) {
    this.grow(Math.max(64, capacity));
  }

  private grow(capacity: number): void {
    const f = (a: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const b = new Float64Array(capacity).fill(Number.NaN);
      b.set(a);
      return b;
    };
    this.due = f(this.due);
    this.sendLag = f(this.sendLag);
    this.socketWait = f(this.socketWait);
    this.latency = f(this.latency);
    this.service = f(this.service);
    const o = new Uint8Array(capacity);
    o.set(this.outcome);
    this.outcome = o;
  }

  add(dueMs: number): number {
    if (this.n === this.due.length) this.grow(this.n * 2);
    this.due[this.n] = dueMs;
    return this.n++;
  }

  report(
    base: Omit<
      VoteReport,
      | 'offered'
      | 'sent'
      | 'acked'
      | 'failed'
      | 'notSent'
      | 'unanswered'
      | 'latencyMs'
      | 'sendLagMs'
      | 'serviceMs'
      | 'clientQueue'
      | 'perSecond'
    >,
  ): VoteReport {
    const counts = [0, 0, 0, 0];
    const acked: number[] = [];
    const sendLag: number[] = [];
    const service: number[] = [];
    const waits: number[] = [];
    const seconds: { votes: number[]; latency: number[]; counts: number[]; sendLagMax: number }[] = [];
    for (let i = 0; i < this.n; i++) {
      const o = this.outcome[i]!;
      counts[o]! += 1;
      const sec = Math.max(0, Math.floor(this.due[i]! / 1000));
      const slot = (seconds[sec] ??= { votes: [], latency: [], counts: [0, 0, 0, 0], sendLagMax: 0 });
      slot.counts[o]! += 1;
      if (o === NOT_SENT) continue;
      sendLag.push(this.sendLag[i]!);
      if (this.sendLag[i]! > slot.sendLagMax) slot.sendLagMax = this.sendLag[i]!;
      if (Number.isFinite(this.socketWait[i]!)) waits.push(this.socketWait[i]!); // set only for votes that found every socket busy
      if (o === ACKED) {
        acked.push(this.latency[i]!);
        slot.latency.push(this.latency[i]!);
        if (Number.isFinite(this.service[i]!)) service.push(this.service[i]!);
      }
    }
    const r1 = (x: number): number => Math.round(x * 10) / 10;
    return {
      ...base,
      offered: this.n,
      sent: this.n - counts[NOT_SENT]!,
      acked: counts[ACKED]!,
      failed: counts[FAILED]!,
      notSent: counts[NOT_SENT]!,
      unanswered: counts[PENDING]!,
      latencyMs: percentiles(acked),
      sendLagMs: percentiles(sendLag),
      serviceMs: percentiles(service),
      clientQueue: { votes: waits.length, waitMs: percentiles(waits) },
      perSecond: Array.from(seconds, (s, second) => {
        const p = percentiles(s?.latency ?? []);
        return {
          second,
          offered: s ? s.counts.reduce((a, b) => a + b, 0) : 0,
          acked: s?.counts[ACKED] ?? 0,
          failed: s?.counts[FAILED] ?? 0,
          notSent: s?.counts[NOT_SENT] ?? 0,
          unanswered: s?.counts[PENDING] ?? 0,
          p50: p.p50,
          p99: p.p99,
          max: p.max,
          sendLagMax: r1(s?.sendLagMax ?? 0),
        };
      }),
    };
  }
}

export async function runVoters(opts: VoterOptions): Promise<VoteReport> {
  const open = opts.rate > 0;
  const sockets = open ? opts.sockets : opts.concurrency;
  const agent = new http.Agent({ keepAlive: true, maxSockets: sockets });
  const url = new URL(opts.graphqlUrl);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const subs = opts.submissionIds;
  const log = new VoteLog(open ? Math.ceil((opts.rate * opts.durationMs) / 1000) + 1 : 1024);
  const errors = new Map<string, number>();
  const live = new Set<http.ClientRequest>();
  let outstanding = 0;
  let frozen = false;
  let settledAll: (() => void) | undefined;

  const error = (message: string): void => {
    const key = message.slice(0, 200);
    errors.set(key, (errors.get(key) ?? 0) + 1);
  };

  // The schedule's origin on the monotonic clock (performance.now()), pinned to opts.startAt.
  await new Promise((r) => setTimeout(r, Math.max(0, opts.startAt - Date.now())));
  const t0 = performance.now() - (Date.now() - opts.startAt);
  const loopDelay = new LoopDelay().start();

  /** Sends vote i (due at t0 + dueMs); `done` runs once it is answered or failed. */
  function send(i: number, done?: () => void): void {
    const issued = performance.now();
    const dueAt = t0 + log.due[i]!;
    log.sendLag[i] = Math.max(0, issued - dueAt);
    const queued = outstanding >= sockets;
    outstanding += 1;
    const token = signHs256(opts.secret, { sub: `bench-${opts.runId}-${i}` });
    const submissionId = subs[Math.floor(Math.random() * subs.length)]!;
    const body = JSON.stringify({
      query: CAST_VOTE,
      variables: { input: { competitionId: opts.competitionId, submissionId, idempotencyKey: `k-${i}` } },
    });
    let socketAt = Number.NaN;
    let req: http.ClientRequest | undefined;
    const finish = (outcome: number, message?: string): void => {
      if (req) live.delete(req);
      outstanding -= 1;
      if (!frozen) {
        const now = performance.now();
        log.outcome[i] = outcome;
        log.latency[i] = now - (open ? dueAt : issued);
        log.service[i] = now - socketAt;
        if (message !== undefined) error(message);
      }
      done?.();
      if (outstanding === 0) settledAll?.();
    };
    const headers = { authorization: `Bearer ${token}`, 'x-forwarded-for': clientIp('voter', i) };
    post(agent, url, body, headers, timeoutMs, (r) => {
      req = r;
      live.add(r);
      r.once('socket', () => {
        socketAt = performance.now();
        if (queued) log.socketWait[i] = socketAt - issued;
      });
    }).then(
      (res) =>
        res.status === 200 && !res.text.includes('"errors"')
          ? finish(ACKED)
          : finish(FAILED, `HTTP ${res.status}: ${res.text.slice(0, 200)}`),
      (e: Error) => finish(FAILED, e.message),
    );
  }

  const end = t0 + opts.durationMs;
  if (open) {
    const interval = 1000 / opts.rate;
    const total = Math.floor((opts.durationMs * opts.rate) / 1000);
    let k = 0;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = performance.now();
        // Everything due by now goes out now, in order; a late tick sends a burst, and each of
        // those votes' latency still runs from its own due time.
        while (k < total && t0 + k * interval <= now) {
          const i = log.add(k * interval);
          k += 1;
          if (outstanding >= opts.maxOutstanding) log.outcome[i] = NOT_SENT;
          else send(i);
        }
        if (k >= total) resolve();
        else setTimeout(tick, Math.max(0, t0 + k * interval - performance.now()));
      };
      tick();
    });
  } else {
    const worker = (): Promise<void> =>
      new Promise<void>((resolve) => {
        const next = (): void => {
          const now = performance.now();
          if (now >= end) return resolve();
          send(log.add(now - t0), next);
        };
        next();
      });
    await Promise.all(Array.from({ length: opts.concurrency }, worker));
  }
  const loopDelayMs = loopDelay.stop();
  const endedAt = Date.now();
  // Votes still unanswered get `graceMs` more; after that the log is frozen and they are dropped.
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      settledAll = resolve;
      setTimeout(resolve, opts.graceMs).unref();
    });
  }
  frozen = true;
  for (const req of live) req.destroy();
  agent.destroy();
  return log.report({
    mode: open ? 'open' : 'closed',
    rate: opts.rate,
    sockets,
    startedAt: opts.startAt,
    endedAt,
    loopDelayMs,
    errors: Object.fromEntries(errors),
  });
}

export interface VoteWorker {
  pid: number;
  run(options: VoterOptions): Promise<VoteReport>;
  stop(): Promise<void>;
}

/**
 * Forks vote-worker.ts and tracks its PID for cleanup. One run at a time.
 */
export async function startVoteWorker(): Promise<VoteWorker> {
  // Under `tsx bench/run.ts` or `node --import tsx` the loader flags are inherited; anywhere else
  // (a test runner) the worker gets tsx itself.
  const execArgv = process.execArgv.some((a) => a.includes('tsx'))
    ? process.execArgv
    : [...process.execArgv, '--import', 'tsx'];
  // 'advanced' (structured clone) keeps NaN percentiles of an empty set as NaN, not null.
  const child = fork(fileURLToPath(new URL('./vote-worker.ts', import.meta.url)), [], {
    execArgv,
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const tracked = trackChild(child, 'vote worker');
  // Loading the worker's modules takes a while on a busy machine; a schedule must not start before.
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    const onExit = (code: number | null): void => reject(new Error(`vote worker exited (${code}) before it was ready`));
    child.once('error', onError);
    child.once('exit', onExit);
    child.once('message', () => {
      child.off('error', onError);
      child.off('exit', onExit);
      resolve();
    });
  });
  return {
    pid: tracked.pid,
    run: (options) =>
      new Promise<VoteReport>((resolve, reject) => {
        const onMessage = (msg: { type: 'result'; report: VoteReport } | { type: 'error'; message: string }): void => {
          child.off('exit', onExit);
          if (msg.type === 'result') resolve(msg.report);
          else reject(new Error(`vote worker: ${msg.message}`));
        };
        const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
          child.off('message', onMessage);
          reject(new Error(`vote worker exited (${code ?? signal}) during a run`));
        };
        child.once('message', onMessage);
        child.once('exit', onExit);
        child.send({ type: 'run', options });
      }),
    stop: async () => {
      // SIGTERM ends it at once; the worker drops its unanswered votes with it.
      await stopChild(tracked, 'SIGTERM', 5_000);
    },
  };
}
