/**
 * N tallyUpdated subscribers in one process, over raw `ws` sockets speaking graphql-transport-ws
 * (connection_init → connection_ack → subscribe → next…) or over SSE (POST /graphql with
 * `Accept: text/event-stream`, frames parsed by hand). No client library: per-subscriber state
 * lives in typed arrays and each frame is scanned with indexOf for seq / publishedAt /
 * totalVotes instead of JSON.parse (the first frame of every subscriber, and every 1000th
 * update, is fully parsed and shape-checked).
 */
import http from 'node:http';
import WebSocket from 'ws';
import { Histogram } from './stats.js';
import { TALLY_SUBSCRIPTION } from './operations.js';
import { clientIp } from './http.js';

export type Transport = 'ws' | 'sse';

const PENDING = 0;
const READY = 1;
const FAILED = 2;
const LOST = 3; // was ready, then the server closed or completed the stream

// Reused by extractUpdate (one frame is parsed at a time).
const parsed = { seq: 0, publishedAtMs: 0, totalVotes: 0 };
let cachedPublishedAt = '';
let cachedPublishedAtMs = 0;

function intAt(text: string, from: number): number {
  let n = 0;
  let i = from;
  let c = text.charCodeAt(i);
  while (c === 32) c = text.charCodeAt(++i);
  while (c >= 48 && c <= 57) {
    n = n * 10 + (c - 48);
    c = text.charCodeAt(++i);
  }
  return i === from ? Number.NaN : n;
}

/** Fills `parsed` from a tallyUpdated payload; false if the frame carries no update. */
export function extractUpdate(text: string): boolean {
  const s = text.indexOf('"seq":');
  const p = text.indexOf('"publishedAt":"');
  const t = text.indexOf('"totalVotes":');
  if (s < 0 || p < 0 || t < 0) return false;
  parsed.seq = intAt(text, s + 6);
  parsed.totalVotes = intAt(text, t + 13);
  const end = text.indexOf('"', p + 15);
  const ts = text.slice(p + 15, end);
  if (ts !== cachedPublishedAt) {
    cachedPublishedAt = ts;
    cachedPublishedAtMs = Date.parse(ts);
  }
  parsed.publishedAtMs = cachedPublishedAtMs;
  return Number.isFinite(parsed.seq) && Number.isFinite(parsed.totalVotes) && Number.isFinite(parsed.publishedAtMs);
}

interface TallyShape {
  competitionId: string;
  seq: number;
  publishedAt: string;
  totalVotes: number;
  entries: { submissionId: string; votes: number; score: number; rank: number }[];
}

export interface PoolOptions {
  transport: Transport;
  /** The subscription document [TALLY_SUBSCRIPTION]. */
  query?: string;
  wsUrl: string;
  graphqlUrl: string;
  competitionId: string;
  submissions: number;
  count: number;
  /** Handshakes in flight at once during the ramp. */
  rampConcurrency: number;
  rampTimeoutMs: number;
  /** First index for this pool's client addresses (so a probe does not share one with a subscriber). */
  ipOffset?: number;
  log?: (line: string) => void;
}

export class SubscriberPool {
  readonly n: number;
  readonly status: Uint8Array;
  readonly firstSeq: Float64Array;
  readonly lastSeq: Float64Array;
  readonly lastTotal: Float64Array;
  /** Updates received with a seq above every earlier one (the snapshot excluded). */
  readonly inOrder: Float64Array;
  readonly outOfOrder: Float64Array;
  readonly latency = new Histogram();
  /** Non-snapshot updates received, all subscribers. */
  updates = 0;
  lastUpdateAt = 0;
  /** Highest seq any subscriber has seen (snapshots included). */
  maxSeq = Number.NEGATIVE_INFINITY;
  /** When set, per second since this epoch ms: [updates received, max publish→receipt ms]. */
  timelineStart = 0;
  readonly timeline: [number, number][] = [];
  bytes = 0;
  readonly errors = new Map<string, number>();
  private readonly conns: (WebSocket | http.ClientRequest | undefined)[];
  private readonly waiters: ((() => void) | undefined)[];
  private closing = false;
  private readonly subscribeFrame: string;
  private readonly sseBody: string;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });
  private readonly url: URL;
  private readonly ipOffset: number;

  constructor(private readonly opts: PoolOptions) {
    this.n = opts.count;
    this.status = new Uint8Array(this.n);
    this.firstSeq = new Float64Array(this.n);
    this.lastSeq = new Float64Array(this.n);
    this.lastTotal = new Float64Array(this.n);
    this.inOrder = new Float64Array(this.n);
    this.outOfOrder = new Float64Array(this.n);
    this.conns = new Array<WebSocket | http.ClientRequest | undefined>(this.n);
    this.waiters = new Array<(() => void) | undefined>(this.n);
    const variables = { competitionId: opts.competitionId };
    const query = opts.query ?? TALLY_SUBSCRIPTION;
    this.subscribeFrame = JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } });
    this.sseBody = JSON.stringify({ query, variables });
    this.url = new URL(opts.graphqlUrl);
    this.ipOffset = opts.ipOffset ?? 0;
  }

  private error(message: string): void {
    const key = message.slice(0, 200);
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  private settle(i: number): void {
    const w = this.waiters[i];
    this.waiters[i] = undefined;
    w?.();
  }

  private fail(i: number, message: string): void {
    if (this.closing) return;
    if (this.status[i] === READY) {
      this.status[i] = LOST;
      this.error(`lost after ready: ${message}`);
    } else if (this.status[i] === PENDING) {
      this.status[i] = FAILED;
      this.error(message);
      this.settle(i);
    }
  }

  private checkShape(text: string, i: number): void {
    try {
      const start = text.indexOf('{"data"');
      const body = JSON.parse(this.opts.transport === 'ws' ? text : text.slice(start)) as {
        payload?: { data?: { tallyUpdated?: TallyShape } };
        data?: { tallyUpdated?: TallyShape };
      };
      const t = (body.payload?.data ?? body.data)?.tallyUpdated;
      const ok =
        t?.competitionId === this.opts.competitionId &&
        Array.isArray(t.entries) &&
        t.entries.length === this.opts.submissions &&
        t.entries.reduce((sum, e) => sum + e.votes, 0) === t.totalVotes &&
        t.entries.every((e, k) => k === 0 || t.entries[k - 1]!.rank <= e.rank);
      if (!ok) this.error(`malformed update: ${text.slice(0, 300)}`);
    } catch {
      this.error(`unparseable update (subscriber ${i}): ${text.slice(0, 300)}`);
    }
  }

  /** One `next` payload for subscriber i. */
  private onNext(i: number, text: string): void {
    this.bytes += text.length;
    if (!extractUpdate(text)) {
      this.fail(i, `next without an update: ${text.slice(0, 300)}`);
      return;
    }
    if (parsed.seq > this.maxSeq) this.maxSeq = parsed.seq;
    const st = this.status[i];
    if (st === PENDING) {
      this.firstSeq[i] = parsed.seq;
      this.lastSeq[i] = parsed.seq;
      this.lastTotal[i] = parsed.totalVotes;
      this.status[i] = READY;
      this.checkShape(text, i);
      this.settle(i);
      return;
    }
    if (st !== READY) return;
    this.updates += 1;
    const now = Date.now();
    this.lastUpdateAt = now;
    const ms = now - parsed.publishedAtMs;
    this.latency.record(ms);
    if (this.timelineStart > 0) {
      const slot = (this.timeline[Math.floor((now - this.timelineStart) / 1000)] ??= [0, 0]);
      slot[0] += 1;
      if (ms > slot[1]) slot[1] = ms;
    }
    if (parsed.seq > this.lastSeq[i]!) {
      this.inOrder[i]! += 1;
      this.lastSeq[i] = parsed.seq;
      this.lastTotal[i] = parsed.totalVotes;
    } else {
      this.outOfOrder[i]! += 1;
    }
    if (this.updates % 1000 === 0) this.checkShape(text, i);
  }

  private connectWs(i: number): void {
    const ws = new WebSocket(this.opts.wsUrl, 'graphql-transport-ws', {
      perMessageDeflate: false,
      handshakeTimeout: 30_000,
      headers: { 'x-forwarded-for': clientIp('subscriber', i + this.ipOffset) },
    });
    this.conns[i] = ws;
    ws.on('open', () => ws.send('{"type":"connection_init","payload":{}}'));
    ws.on('message', (data: Buffer) => {
      const text = data.toString('latin1');
      if (text.includes('"type":"next"')) this.onNext(i, text);
      else if (text.includes('"type":"connection_ack"')) ws.send(this.subscribeFrame);
      else if (text.includes('"type":"ping"')) ws.send('{"type":"pong"}');
      else if (text.includes('"type":"error"')) this.fail(i, `error: ${text.slice(0, 300)}`);
      else if (text.includes('"type":"complete"')) this.fail(i, 'server completed the subscription');
    });
    ws.on('error', (e: Error) => this.fail(i, `ws error: ${e.message}`));
    ws.on('close', (code: number, reason: Buffer) => this.fail(i, `ws closed ${code} ${reason.toString()}`));
  }

  private handleSseEvent(i: number, ev: string): void {
    if (ev.length === 0 || ev.charCodeAt(0) === 58 /* ':' comment / keep-alive */) return;
    const d = ev.indexOf('data:');
    const isNext = ev.startsWith('event: next') || ev.startsWith('event:next') || ev.startsWith('data:');
    if (isNext && d >= 0) this.onNext(i, ev.slice(d + 5));
    else if (ev.includes('event: complete') || ev.includes('event:complete'))
      this.fail(i, 'server completed the stream');
  }

  private connectSse(i: number): void {
    const req = http.request(
      {
        agent: this.agent,
        host: this.url.hostname,
        port: this.url.port,
        path: this.url.pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'text/event-stream',
          'content-length': Buffer.byteLength(this.sseBody),
          'x-forwarded-for': clientIp('subscriber', i + this.ipOffset),
        },
      },
      (res) => {
        res.setEncoding('latin1');
        const type = String(res.headers['content-type'] ?? '');
        if (res.statusCode !== 200 || !type.includes('text/event-stream')) {
          let body = '';
          res.on('data', (c: string) => (body += c));
          res.on('end', () => this.fail(i, `SSE HTTP ${res.statusCode} ${type}: ${body.slice(0, 300)}`));
          return;
        }
        let buf = '';
        res.on('data', (chunk: string) => {
          buf = buf.length === 0 ? chunk : buf + chunk;
          let idx = buf.indexOf('\n\n');
          while (idx >= 0) {
            this.handleSseEvent(i, buf.slice(0, idx));
            buf = buf.slice(idx + 2);
            idx = buf.indexOf('\n\n');
          }
        });
        res.on('error', (e) => this.fail(i, `SSE response error: ${e.message}`));
        res.on('close', () => this.fail(i, 'SSE stream closed'));
      },
    );
    this.conns[i] = req;
    req.on('error', (e) => this.fail(i, `SSE request error: ${e.message}`));
    req.end(this.sseBody);
  }

  private connect(i: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.fail(i, `not ready within ${timeoutMs} ms`), timeoutMs);
      this.waiters[i] = () => {
        clearTimeout(timer);
        resolve();
      };
      try {
        if (this.opts.transport === 'ws') this.connectWs(i);
        else this.connectSse(i);
      } catch (e) {
        this.fail(i, `connect threw: ${(e as Error).message}`);
      }
    });
  }

  /** Opens every subscriber, `rampConcurrency` handshakes at a time; resolves when all settled. */
  async open(): Promise<{ ready: number; failed: number; rampMs: number }> {
    const started = Date.now();
    const deadline = started + this.opts.rampTimeoutMs;
    let next = 0;
    const progress = setInterval(() => {
      this.opts.log?.(
        `  ramp: ${this.count(READY)}/${this.n} ready, ${this.count(FAILED)} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }, 3_000);
    const worker = async (): Promise<void> => {
      while (next < this.n && Date.now() < deadline) {
        const i = next++;
        await this.connect(i, Math.max(1_000, Math.min(60_000, deadline - Date.now())));
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.opts.rampConcurrency, this.n) }, worker));
    } finally {
      clearInterval(progress);
    }
    for (let i = next; i < this.n; i++) {
      this.status[i] = FAILED;
      this.error('ramp deadline reached before connecting');
    }
    return { ready: this.count(READY), failed: this.count(FAILED), rampMs: Date.now() - started };
  }

  count(status: number): number {
    let c = 0;
    for (let i = 0; i < this.n; i++) if (this.status[i] === status) c++;
    return c;
  }

  /** Subscribers still live whose latest update shows fewer than `total` votes. */
  below(total: number): number {
    let c = 0;
    for (let i = 0; i < this.n; i++) if (this.status[i] === READY && this.lastTotal[i]! < total) c++;
    return c;
  }

  /** Live subscribers whose newest update is older than `seq`. */
  behind(seq: number): number {
    let c = 0;
    for (let i = 0; i < this.n; i++) if (this.status[i] === READY && this.lastSeq[i]! < seq) c++;
    return c;
  }

  /** The totalVotes of the newest update any live subscriber holds (totals only grow with seq). */
  newestTotal(): number {
    let total = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < this.n; i++)
      if (this.status[i] === READY && this.lastTotal[i]! > total) total = this.lastTotal[i]!;
    return total;
  }

  close(): void {
    this.closing = true;
    for (let i = 0; i < this.n; i++) {
      const c = this.conns[i];
      if (c instanceof WebSocket) c.terminate();
      else c?.destroy();
      this.conns[i] = undefined;
    }
    this.agent.destroy();
  }

  /** Per-subscriber delivery audit against the seq the server says it last published. */
  audit(publishedSeq: number, finalTotal: number) {
    let missing = 0;
    let subscribersWithGaps = 0;
    let outOfOrder = 0;
    let staleFinal = 0;
    let expected = 0;
    let lost = 0;
    for (let i = 0; i < this.n; i++) {
      const st = this.status[i];
      if (st !== READY && st !== LOST) continue;
      if (st === LOST) lost++;
      const want = Math.max(0, publishedSeq - this.firstSeq[i]!);
      const gap = Math.max(0, want - this.inOrder[i]!);
      expected += want;
      missing += gap;
      if (gap > 0) subscribersWithGaps++;
      outOfOrder += this.outOfOrder[i]!;
      if (this.lastTotal[i] !== finalTotal) staleFinal++;
    }
    return { expected, missing, subscribersWithGaps, outOfOrder, staleFinal, lostConnections: lost };
  }
}
