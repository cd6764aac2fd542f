/**
 * The cluster view for admins (serverStats, serverStatsUpdated): every SERVER_STATS_INTERVAL_MS
 * each instance samples itself (connections and subscriptions by transport, events delivered and
 * votes per second, delivery lag p99, error rate, memory, CPU) and publishes the sample to a store
 * shared by the instances (ops.stats.store.*.ts); any instance answers with all of them. A sample
 * expires after three intervals, so an instance that died drops out of the view by itself.
 */
import type { MetricTotals, TransportLabel } from './ops.metrics.registry.js';
import type { InstanceStats, ServerStatsStore, TransportCounts } from './ops.stats.store.js';

export type { InstanceStats, TransportCounts } from './ops.stats.store.js';

export interface ServerStats {
  instances: InstanceStats[];
  connections: TransportCounts;
  subscriptions: TransportCounts;
  eventsDeliveredPerSecond: number;
  votesPerSecond: number;
  /** Failed operations / operations across instances, over their last interval. */
  errorRate: number;
  /** The worst instance's. */
  deliveryLagP99Ms: number | null;
  generatedAt: string;
}

/** What the app can tell about itself right now (app.ts wires it to the transports and the metrics). */
export interface LocalSources {
  connections(): TransportCounts;
  totals(): MetricTotals;
}

export interface ServerStatsService {
  /** Every live instance's latest sample, aggregated (this instance's fresh). */
  stats(): Promise<ServerStats>;
  /** This instance's sample now (also published). */
  sample(): InstanceStats;
  readonly intervalMs: number;
  close(): Promise<void>;
}

const TRANSPORTS: readonly TransportLabel[] = ['ws', 'sse', 'graphql-sse'];
const sum = (counts: TransportCounts[]): TransportCounts =>
  Object.fromEntries(TRANSPORTS.map((t) => [t, counts.reduce((n, c) => n + (c[t] ?? 0), 0)])) as TransportCounts;
const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;

export function aggregate(instances: InstanceStats[], now: Date): ServerStats {
  const sorted = [...instances].sort(
    (a, b) => a.startedAt.localeCompare(b.startedAt) || a.instanceId.localeCompare(b.instanceId),
  );
  const operations = sorted.reduce((n, i) => n + i.operationsPerSecond, 0);
  const errors = sorted.reduce((n, i) => n + i.errorRate * i.operationsPerSecond, 0);
  const lags = sorted.map((i) => i.deliveryLagP99Ms).filter((l): l is number => l !== null);
  return {
    instances: sorted,
    connections: sum(sorted.map((i) => i.connections)),
    subscriptions: sum(sorted.map((i) => i.subscriptions)),
    eventsDeliveredPerSecond: round(sorted.reduce((n, i) => n + i.eventsDeliveredPerSecond, 0)),
    votesPerSecond: round(sorted.reduce((n, i) => n + i.votesPerSecond, 0)),
    errorRate: operations > 0 ? round(errors / operations, 4) : 0,
    deliveryLagP99Ms: lags.length > 0 ? Math.max(...lags) : null,
    generatedAt: now.toISOString(),
  };
}

export function createServerStatsService(deps: {
  instanceId: string;
  store: ServerStatsStore;
  local: LocalSources;
  intervalMs: number;
  onError: (message: string, details: Record<string, unknown>) => void;
  now?: () => number;
}): ServerStatsService {
  const { instanceId, store, local, intervalMs } = deps;
  const now = deps.now ?? Date.now;
  const startedAt = now();
  // Rates are over the time since the previous sample (per second).
  let previous = { at: startedAt, totals: local.totals(), cpu: process.cpuUsage() };

  function sample(): InstanceStats {
    const at = now();
    const totals = local.totals();
    const cpu = process.cpuUsage();
    const seconds = Math.max(0.001, (at - previous.at) / 1000);
    const operations = totals.operations - previous.totals.operations;
    const memory = process.memoryUsage();
    const stats: InstanceStats = {
      instanceId,
      startedAt: new Date(startedAt).toISOString(),
      uptimeSeconds: round((at - startedAt) / 1000, 1),
      connections: local.connections(),
      subscriptions: totals.subscriptions,
      eventsDeliveredPerSecond: round((totals.delivered - previous.totals.delivered) / seconds),
      deliveryLagP99Ms: totals.lagP99Seconds === null ? null : totals.lagP99Seconds * 1000,
      votesPerSecond: round((totals.votes - previous.totals.votes) / seconds),
      errorRate: operations > 0 ? round((totals.errors - previous.totals.errors) / operations, 4) : 0,
      operationsPerSecond: round(operations / seconds),
      memoryRssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      cpuPercent: round(
        ((cpu.user - previous.cpu.user + cpu.system - previous.cpu.system) / 1000 / (seconds * 1000)) * 100,
        1,
      ),
      sampledAt: new Date(at).toISOString(),
    };
    previous = { at, totals, cpu };
    return stats;
  }

  let latest: InstanceStats | undefined;
  const publish = async (): Promise<void> => {
    latest = sample();
    await store.put(latest, 3 * intervalMs);
  };
  const tick = (): void => {
    publish().catch((error: unknown) => deps.onError('server stats publish failed; retrying', { error }));
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();

  return {
    intervalMs,
    sample: () => latest ?? sample(),
    async stats() {
      const others = (await store.list()).filter((s) => s.instanceId !== instanceId);
      return aggregate([latest ?? sample(), ...others], new Date(now()));
    },
    async close() {
      clearInterval(timer);
      await store.remove(instanceId).catch(() => undefined);
    },
  };
}
