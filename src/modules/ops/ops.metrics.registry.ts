/**
 * The process's Prometheus series (prom-client), created once in app.ts and handed to the parts
 * that report through small hooks (`OpsHooks`): services, guards and transports never import
 * prom-client. Gauges of state that already exists elsewhere (connections, delivery stats, pools)
 * are read when Prometheus scrapes (`collect`), not maintained on the hot path.
 *
 * Label values are bounded: root fields of the schema (never operation names or ids), the error
 * catalogue's codes, rate rule names from config, fraud rules from fraud.rules.ts, transports.
 * The contract's series (api-contract.graphql, "Operations") keep exactly their names and labels.
 *
 * One file on purpose (over ~400 lines): every series the process exposes is defined here, so
 * `/metrics`, the alert rules (deploy/prometheus) and the dashboard can be checked against one list.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

export type TransportLabel = 'ws' | 'sse' | 'graphql-sse';
export type OperationType = 'query' | 'mutation' | 'subscription';

/** What the rest of the app reports; the no-op version (METRICS_ENABLED=false) costs nothing. */
export interface OpsHooks {
  /** One GraphQL operation finished (subscriptions: once set up or refused). `name`: its root field. */
  operation(type: OperationType, name: string, code: string, seconds: number): void;
  subscriptionStarted(field: string, transport: TransportLabel): void;
  subscriptionEnded(field: string, transport: TransportLabel): void;
  /** `count` results of `field` written to subscribers; `publishedAtMs`: when their event was published. */
  delivered(field: string, publishedAtMs: number | undefined, count: number): void;
  /** A snapshot replaced an older one a slow watcher had not been sent yet (backpressure). */
  conflated(field: string, count: number): void;
  /** An event subscription ended as a slow consumer (its queued events were dropped; it resumes). */
  slowConsumer(field: string): void;
  /** A subscription with a resume cursor: `outcome` = 'resumed' or the error code it failed with. */
  resume(field: string, outcome: string): void;
  /** A call refused by a rate rule; `struck`: a new strike (the start of a block), not a call during one. */
  rateLimited(rule: string, struck: boolean): void;
  /** A fraud check's verdict for an action of `kind`, with the rules that scored. */
  fraudVerdict(kind: string, action: string, rules: readonly string[]): void;
}

export const noopHooks: OpsHooks = {
  operation: () => undefined,
  subscriptionStarted: () => undefined,
  subscriptionEnded: () => undefined,
  delivered: () => undefined,
  conflated: () => undefined,
  slowConsumer: () => undefined,
  resume: () => undefined,
  rateLimited: () => undefined,
  fraudVerdict: () => undefined,
};

/** State read at scrape time; each source is optional (a single process without Redis has none). */
export interface ScrapeSources {
  connections(): Record<TransportLabel, number>;
  /** Bytes written for clients and not taken yet, per transport (backpressure). */
  bufferedBytes(): Record<TransportLabel, number>;
  /** Results held for clients that are behind (delivery.ts and shared subscriptions). */
  heldResults(): number;
  /** Times a dependency's round trip, rejecting when it fails (bounded by the caller's timeout). */
  probes: Record<string, () => Promise<void>>;
  /** The pg pool, when DATABASE_URL is set. */
  databasePool?: () => { total: number; idle: number; waiting: number; max: number };
}

export interface MetricTotals {
  operations: number;
  /** Operations that ended with an error code. */
  errors: number;
  /** castVote operations that succeeded. */
  votes: number;
  /** Subscription results written to subscribers. */
  delivered: number;
  /** Live subscriptions per transport. */
  subscriptions: Record<TransportLabel, number>;
  /** The delivery lag's 99th percentile over the last LAG_WINDOW (SlidingQuantile), null without deliveries in it. */
  lagP99Seconds: number | null;
}

export interface Metrics extends OpsHooks {
  readonly registry: Registry;
  /** Prometheus text format, every series of this process. */
  render(): Promise<string>;
  readonly contentType: string;
  /** Sources read at scrape time; set once the transports exist. */
  attach(sources: ScrapeSources): void;
  /** Counts since start and the recent lag p99, for the cluster view (ops.stats.service.ts). */
  totals(): MetricTotals;
}

/** Seconds: delivery is expected in milliseconds, a stalled fan-out in seconds. */
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const PROBE_TIMEOUT_MS = 1_000;
/** The window of the cluster view's delivery lag p99: the last minute, in 5-second steps. */
export const LAG_WINDOW = { windowMs: 60_000, sliceMs: 5_000 };

/** Index of the bucket holding `value`: the first bound at or above it, or `bounds.length` above them all. */
function bucketIndex(bounds: readonly number[], value: number): number {
  let i = 0;
  while (i < bounds.length && value > bounds[i]!) i += 1;
  return i;
}

/**
 * A histogram observed in batches: a fan-out writes one result to thousands of subscribers in one
 * turn, and their lag is the same to the millisecond, so it is recorded once with its count
 * (prom-client's Histogram takes one observation per call: 10,000 calls per event). Exposed in
 * prom-client's format through the registry like any other metric.
 */
class BatchedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly label: string,
    private readonly buckets: readonly number[],
  ) {}

  observe(labelValue: string, value: number, count: number): void {
    let entry = this.series.get(labelValue);
    if (!entry)
      this.series.set(
        labelValue,
        (entry = { counts: new Array<number>(this.buckets.length).fill(0), sum: 0, count: 0 }),
      );
    const i = bucketIndex(this.buckets, value);
    if (i < this.buckets.length) entry.counts[i]! += count;
    entry.sum += value * count;
    entry.count += count;
  }

  get() {
    const values: { labels: Record<string, string | number>; value: number; metricName: string }[] = [];
    for (const [labelValue, entry] of this.series) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += entry.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { [this.label]: labelValue, le }, value: cumulative });
      });
      values.push({
        metricName: `${this.name}_bucket`,
        labels: { [this.label]: labelValue, le: '+Inf' },
        value: entry.count,
      });
      values.push({ metricName: `${this.name}_sum`, labels: { [this.label]: labelValue }, value: entry.sum });
      values.push({ metricName: `${this.name}_count`, labels: { [this.label]: labelValue }, value: entry.count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  reset(): void {
    this.series.clear();
  }
}

/**
 * A quantile over the last `windowMs`, for the cluster view. The histogram Prometheus scrapes is
 * cumulative since start (a query's rate() windows it); serverStats shows what is happening now,
 * and a p99 since start would hide a stall that began a minute ago behind an hour of fast
 * deliveries, then keep showing it long after. Counts are kept per slice of `sliceMs`, and a slice
 * leaves once it is wholly older than the window: the window is `windowMs` to `windowMs + sliceMs`
 * long and moves in steps of a slice, so memory stays a few arrays whatever the traffic.
 */
export class SlidingQuantile {
  /** Oldest first; `counts[bounds.length]` holds values above the top bound, `max` the largest. */
  private readonly slices: { start: number; counts: number[]; max: number }[] = [];

  constructor(
    private readonly bounds: readonly number[],
    private readonly windowMs: number,
    private readonly sliceMs: number,
    private readonly now: () => number,
  ) {}

  observe(value: number, count: number): void {
    const at = this.now();
    const start = at - (at % this.sliceMs);
    let slice = this.slices.at(-1);
    if (slice?.start !== start) {
      this.prune(at);
      slice = { start, counts: new Array<number>(this.bounds.length + 1).fill(0), max: 0 };
      this.slices.push(slice);
    }
    slice.counts[bucketIndex(this.bounds, value)]! += count;
    slice.max = Math.max(slice.max, value);
  }

  /**
   * The upper bound of the bucket holding the q-quantile of the window's values; above the top
   * bound, the largest value seen (a bound would understate a stall, and Infinity is no GraphQL
   * Float). Null when the window holds nothing.
   */
  quantile(q: number): number | null {
    this.prune(this.now());
    const counts = new Array<number>(this.bounds.length + 1).fill(0);
    for (const slice of this.slices) slice.counts.forEach((n, i) => (counts[i]! += n));
    const total = counts.reduce((a, b) => a + b, 0);
    if (total === 0) return null;
    let seen = 0;
    for (let i = 0; i < this.bounds.length; i += 1) {
      seen += counts[i]!;
      if (seen >= q * total) return this.bounds[i]!;
    }
    return Math.max(...this.slices.map((slice) => slice.max));
  }

  private prune(at: number): void {
    while (this.slices.length > 0 && this.slices[0]!.start + this.sliceMs <= at - this.windowMs) this.slices.shift();
  }
}

const TRANSPORTS: readonly TransportLabel[] = ['ws', 'sse', 'graphql-sse'];

async function timed(probe: () => Promise<void>): Promise<number> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), PROBE_TIMEOUT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return (performance.now() - started) / 1000;
}

export function createMetrics(opts: { now?: () => number } = {}): Metrics {
  const now = opts.now ?? Date.now;
  // No instance label of our own: Prometheus labels each target (`instance`), and a per-start id
  // would make new series at every restart.
  const registry = new Registry();
  // Event-loop lag, GC, heap, RSS, CPU, handles: prom-client's process metrics.
  collectDefaultMetrics({ register: registry, prefix: 'ovation_' });
  let sources: ScrapeSources | undefined;

  const operations = new Counter({
    name: 'ovation_graphql_operations_total',
    help: 'GraphQL operations by type, root field and outcome (OK or the error code)',
    labelNames: ['type', 'name', 'code'] as const,
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'ovation_graphql_operation_duration_seconds',
    help: 'GraphQL operation latency (parse to result; subscriptions: until set up) by type and root field',
    labelNames: ['type', 'name'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const subscriptions = new Map<string, number>();
  const subscriptionsByTransport: Record<TransportLabel, number> = { ws: 0, sse: 0, 'graphql-sse': 0 };
  new Gauge({
    name: 'ovation_subscriptions',
    help: 'Live subscriptions per Subscription field',
    labelNames: ['field'] as const,
    registers: [registry],
    collect() {
      for (const [field, n] of subscriptions) this.set({ field }, n);
    },
  });
  new Gauge({
    name: 'ovation_connections',
    help: 'Open client connections per streaming transport',
    labelNames: ['transport'] as const,
    registers: [registry],
    collect() {
      const counts = sources?.connections();
      for (const transport of TRANSPORTS) this.set({ transport }, counts?.[transport] ?? 0);
    },
  });
  new Gauge({
    name: 'ovation_client_buffered_bytes',
    help: 'Bytes written for clients that their connections have not taken yet, per transport',
    labelNames: ['transport'] as const,
    registers: [registry],
    collect() {
      const bytes = sources?.bufferedBytes();
      for (const transport of TRANSPORTS) this.set({ transport }, bytes?.[transport] ?? 0);
    },
  });
  new Gauge({
    name: 'ovation_delivery_held_results',
    help: 'Subscription results held for clients that are behind',
    registers: [registry],
    collect() {
      this.set(sources?.heldResults() ?? 0);
    },
  });
  const delivered = new Map<string, number>();
  let deliveredTotal = 0;
  new Counter({
    name: 'ovation_events_delivered_total',
    help: 'Subscription results written to subscribers, per Subscription field',
    labelNames: ['field'] as const,
    registers: [registry],
    collect() {
      // Counted in plain numbers on the fan-out path; published here.
      this.reset();
      for (const [field, n] of delivered) this.inc({ field }, n);
    },
  });
  const lag = new BatchedHistogram(
    'ovation_delivery_lag_seconds',
    'From an event being published to its result being written to a subscriber',
    'field',
    LAG_BUCKETS,
  );
  registry.registerMetric(lag as unknown as Metric);
  const recentLag = new SlidingQuantile(LAG_BUCKETS, LAG_WINDOW.windowMs, LAG_WINDOW.sliceMs, now);
  const conflated = new Counter({
    name: 'ovation_frames_conflated_total',
    help: 'Snapshot results replaced by a newer one before a slow watcher was sent them, per field',
    labelNames: ['field'] as const,
    registers: [registry],
  });
  const slowConsumers = new Counter({
    name: 'ovation_slow_consumers_total',
    help: 'Event subscriptions ended as slow consumers (queued events dropped; the client resumes), per field',
    labelNames: ['field'] as const,
    registers: [registry],
  });
  const resumes = new Counter({
    name: 'ovation_resume_requests_total',
    help: 'Subscriptions started with a resume cursor (afterSeq or Last-Event-ID), by field and outcome (resumed, RESYNC_REQUIRED, other codes)',
    labelNames: ['field', 'outcome'] as const,
    registers: [registry],
  });
  const rateRejections = new Counter({
    name: 'ovation_rate_limit_rejections_total',
    help: 'Calls refused by a rate rule',
    labelNames: ['rule'] as const,
    registers: [registry],
  });
  const rateStrikes = new Counter({
    name: 'ovation_rate_limit_strikes_total',
    help: 'Rate-limit strikes (the first refusal of an episode, which starts a block), by rule',
    labelNames: ['rule'] as const,
    registers: [registry],
  });
  const fraudVerdicts = new Counter({
    name: 'ovation_fraud_verdicts_total',
    help: 'Fraud check verdicts by kind of action and action taken (ALLOW, FLAG, BLOCK)',
    labelNames: ['kind', 'action'] as const,
    registers: [registry],
  });
  const fraudRules = new Counter({
    name: 'ovation_fraud_rule_hits_total',
    help: 'Fraud rules that scored in a FLAG or BLOCK verdict, by rule and action',
    labelNames: ['rule', 'action'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'ovation_dependency_up',
    help: '1 when the dependency answered a round trip at scrape time (within 1 s), else 0',
    labelNames: ['dependency'] as const,
    registers: [registry],
    // WORKERS > 1 (ops.metrics.aggregator.ts): 0 as soon as one worker cannot reach it, not a count of those that can.
    aggregator: 'min',
    async collect() {
      this.reset();
      for (const [dependency, probe] of Object.entries(sources?.probes ?? {})) {
        const seconds = await timed(probe).catch(() => undefined);
        this.set({ dependency }, seconds === undefined ? 0 : 1);
        if (seconds !== undefined) probeLatency.observe({ dependency }, seconds);
      }
    },
  });
  const probeLatency = new Histogram({
    name: 'ovation_dependency_latency_seconds',
    help: 'Round trip to the database (SELECT 1) and Redis (PING), measured at each scrape',
    labelNames: ['dependency'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  new Gauge({
    name: 'ovation_database_pool_connections',
    help: 'pg pool connections by state (total, idle, waiting = requests waiting for one, max)',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const pool = sources?.databasePool?.();
      if (!pool) return;
      for (const state of ['total', 'idle', 'waiting', 'max'] as const) this.set({ state }, pool[state]);
    },
  });

  let operationsTotal = 0;
  let errorsTotal = 0;
  let votesTotal = 0;

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    attach(next) {
      sources = next;
    },
    totals: () => ({
      operations: operationsTotal,
      errors: errorsTotal,
      votes: votesTotal,
      delivered: deliveredTotal,
      subscriptions: { ...subscriptionsByTransport },
      lagP99Seconds: recentLag.quantile(0.99),
    }),
    operation(type, name, code, seconds) {
      operations.inc({ type, name, code });
      durations.observe({ type, name }, seconds);
      operationsTotal += 1;
      if (code !== 'OK') errorsTotal += 1;
      else if (name === 'castVote') votesTotal += 1;
    },
    subscriptionStarted(field, transport) {
      subscriptions.set(field, (subscriptions.get(field) ?? 0) + 1);
      subscriptionsByTransport[transport] += 1;
    },
    subscriptionEnded(field, transport) {
      subscriptions.set(field, (subscriptions.get(field) ?? 1) - 1);
      subscriptionsByTransport[transport] -= 1;
    },
    delivered(field, publishedAtMs, count) {
      if (count <= 0) return;
      delivered.set(field, (delivered.get(field) ?? 0) + count);
      deliveredTotal += count;
      if (publishedAtMs === undefined) return;
      const seconds = Math.max(0, now() - publishedAtMs) / 1000;
      lag.observe(field, seconds, count);
      recentLag.observe(seconds, count);
    },
    conflated(field, count) {
      conflated.inc({ field }, count);
    },
    slowConsumer(field) {
      slowConsumers.inc({ field });
    },
    resume(field, outcome) {
      resumes.inc({ field, outcome });
    },
    rateLimited(rule, struck) {
      rateRejections.inc({ rule });
      if (struck) rateStrikes.inc({ rule });
    },
    fraudVerdict(kind, action, rules) {
      fraudVerdicts.inc({ kind, action });
      for (const rule of rules) fraudRules.inc({ rule, action });
    },
  };
}
