/**
 * Where instances leave their latest stats sample for each other (ops.stats.service.ts): in memory for a
 * single process, a Redis hash shared by every instance otherwise (chosen in src/stores.ts).
 */
import type { TransportLabel } from './ops.metrics.registry.js';

export type TransportCounts = Record<TransportLabel, number>;

export interface InstanceStats {
  instanceId: string;
  /** ISO-8601. */
  startedAt: string;
  uptimeSeconds: number;
  connections: TransportCounts;
  subscriptions: TransportCounts;
  eventsDeliveredPerSecond: number;
  /** Publish to write, 99th percentile over the last minute (ops.metrics.registry.ts LAG_WINDOW; a bucket bound); null without deliveries in it. */
  deliveryLagP99Ms: number | null;
  votesPerSecond: number;
  /** Operations that failed / operations, over the last interval (0 without operations). */
  errorRate: number;
  operationsPerSecond: number;
  memoryRssBytes: number;
  heapUsedBytes: number;
  /** Process CPU (user + system) over the last interval; 100 = one core. */
  cpuPercent: number;
  /** ISO-8601: when this sample was taken. */
  sampledAt: string;
}

export interface ServerStatsStore {
  /** Replaces this instance's sample; it counts as gone `ttlMs` from now unless replaced. */
  put(stats: InstanceStats, ttlMs: number): Promise<void>;
  /** Every sample not expired. */
  list(): Promise<InstanceStats[]>;
  /** This instance stops (shutdown): its sample goes at once. */
  remove(instanceId: string): Promise<void>;
}
