/**
 * WORKERS > 1: Prometheus scrapes one port, and the primary deals that connection to one worker;
 * that worker's /metrics answers for all of them. It asks its primary (cluster.ts), which collects
 * every serving worker's series over IPC and merges them here, with prom-client's aggregators:
 *
 * - the app's series (operations, deliveries, rate limits, connections, subscriptions, buffered
 *   bytes, pool use, latency histograms) are summed: the host's totals, as if one process served;
 *   `ovation_dependency_up` takes the minimum (0 as soon as one worker cannot reach it);
 * - per-process series (prom-client's `process_*` and `nodejs_*`: memory, CPU, event-loop lag,
 *   GC, handles) stay one per worker, labelled `worker` (its slot, 1..WORKERS, stable across
 *   restarts): a sum or an average of event-loop lag or CPU would hide the one worker that is
 *   saturated (Node runs each on one core).
 */
import { AggregatorRegistry, type Registry } from 'prom-client';

/** One registry's series as prom-client's `getMetricsAsJSON()` gives them (what crosses IPC). */
export type MetricsSnapshot = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export interface WorkerSnapshot {
  /** The worker's slot, 1..WORKERS. */
  worker: number;
  metrics: MetricsSnapshot;
}

/** How a cluster worker's /metrics answers for the whole host (cluster.ts implements it over IPC). */
export interface WorkerMetricsLink {
  /**
   * Every serving worker's series, merged (mergeWorkerMetrics); rejects when one does not answer.
   * The primary's reply arrives through the listener `answer` installs (ops.module.ts installs it first).
   */
  scrape(): Promise<string>;
  /** Answers the primary's requests for this worker's own series until the returned function is called. */
  answer(snapshot: () => Promise<MetricsSnapshot>): () => void;
}

/** prom-client's default metrics, named with our prefix (ops.metrics.registry.ts). */
const PER_PROCESS = /^ovation_(?:process|nodejs)_/;

/** The Prometheus text of the workers' series merged as the header says. */
export function mergeWorkerMetrics(workers: readonly WorkerSnapshot[]): Promise<string> {
  const labelled = workers.map(({ worker, metrics }) =>
    metrics.map((metric) =>
      PER_PROCESS.test(metric.name)
        ? {
            ...metric,
            // Each value is one worker's now (its labels differ): 'sum' keeps it as it is, where
            // prom-client's own choice would average (event-loop lag) or drop (start time) them.
            aggregator: 'sum' as const,
            values: metric.values.map((value) => ({ ...value, labels: { ...value.labels, worker } })),
          }
        : metric,
    ),
  );
  return AggregatorRegistry.aggregate(labelled).metrics();
}
