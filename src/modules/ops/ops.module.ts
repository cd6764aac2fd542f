/**
 * Operations, wired once in app.ts: the metrics registry (or nothing with METRICS_ENABLED=false),
 * the hooks other parts report through, the Yoga plugins (GET /metrics, per-operation access log
 * and metrics), and the admin cluster view with its store (memory, or Redis when configured).
 * In a cluster worker (WORKERS > 1) GET /metrics answers for every worker of the host, through
 * the primary (ops.metrics.aggregator.ts); the cluster view lists each worker as an instance of its own.
 */
import type { Plugin } from 'graphql-yoga';
import type { GraphQLSchema } from 'graphql';
import type { Config } from '../../config.js';
import type { Logger } from '../../infra/logger.js';
import type { FraudDecision } from '../../guards/fraud/fraud.engine.js';
import { useMetricsEndpoint } from './ops.metrics.plugin.js';
import {
  createMetrics,
  noopHooks,
  type Metrics,
  type MetricTotals,
  type OpsHooks,
  type ScrapeSources,
  type TransportLabel,
} from './ops.metrics.registry.js';
import { useOperationObservability } from './ops.plugin.js';
import { createServerStatsService, type ServerStatsService } from './ops.stats.service.js';
import type { ServerStatsStore } from './ops.stats.store.js';
import type { WorkerMetricsLink } from './ops.metrics.aggregator.js';

export interface Ops {
  /** What guards, delivery and transports report through (no-ops when metrics are off). */
  readonly hooks: OpsHooks;
  /** The registry, when metrics are on (tests read it). */
  readonly metrics: Metrics | undefined;
  fraudDecision(decision: FraudDecision): void;
  /** Register after every other plugin (see ops.plugin.ts). */
  plugins(schema: GraphQLSchema): Plugin[];
  /** The cluster view's service for this instance; sampling starts now. */
  serverStats(instanceId: string): ServerStatsService;
  /** What is read at scrape and sample time, once the transports exist. */
  attach(sources: ScrapeSources): void;
  close(): Promise<void>;
}

const ZERO: Record<TransportLabel, number> = { ws: 0, sse: 0, 'graphql-sse': 0 };
const NO_TOTALS: MetricTotals = {
  operations: 0,
  errors: 0,
  votes: 0,
  delivered: 0,
  subscriptions: ZERO,
  lagP99Seconds: null,
};

export function createOps(deps: {
  config: Config;
  logger: Logger;
  statsStore: ServerStatsStore;
  /** Set in a cluster worker (cluster.ts): /metrics then renders every worker's series. */
  workerMetrics?: WorkerMetricsLink | undefined;
}): Ops {
  const { config, logger, workerMetrics } = deps;
  const metrics = config.metricsEnabled ? createMetrics() : undefined;
  const stopAnswering = metrics && workerMetrics?.answer(() => metrics.registry.getMetricsAsJSON());
  const hooks = metrics ?? noopHooks;
  let sources: ScrapeSources | undefined;
  let stats: ServerStatsService | undefined;
  return {
    hooks,
    metrics,
    fraudDecision: (decision) =>
      hooks.fraudVerdict(
        decision.kind,
        decision.verdict,
        decision.verdict === 'ALLOW' ? [] : decision.rules.map((r) => r.rule),
      ),
    plugins: (schema) => [
      ...(metrics
        ? [
            useMetricsEndpoint({
              render: workerMetrics ? () => workerMetrics.scrape() : () => metrics.render(),
              contentType: metrics.contentType,
              token: config.metricsToken,
            }),
          ]
        : []),
      useOperationObservability({ hooks, logger, schema, slowOperationMs: config.slowOperationMs }),
    ],
    serverStats(instanceId) {
      stats = createServerStatsService({
        instanceId,
        store: deps.statsStore,
        local: {
          connections: () => sources?.connections() ?? { ...ZERO },
          totals: () => metrics?.totals() ?? NO_TOTALS,
        },
        intervalMs: config.serverStatsIntervalMs,
        onError: (message, details) => logger.warn(message, details),
      });
      return stats;
    },
    attach(next) {
      sources = next;
      metrics?.attach(next);
    },
    close: async () => {
      stopAnswering?.();
      await stats?.close();
    },
  };
}
