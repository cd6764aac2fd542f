import { builder } from '../../schema/builder.js';
import { everyInterval } from '../../realtime/stream.js';
import type { InstanceStats, ServerStats, TransportCounts } from './ops.stats.service.js';

const TransportCountsRef = builder.objectRef<TransportCounts>('TransportCounts').implement({
  description: 'A count per streaming transport.',
  fields: (t) => ({
    ws: t.int({ description: 'graphql-ws (subprotocol graphql-transport-ws).', resolve: (c) => c.ws }),
    sse: t.int({ description: "Yoga's distinct-connection SSE on /graphql.", resolve: (c) => c.sse }),
    graphqlSse: t.int({ description: 'graphql-sse on /graphql/stream.', resolve: (c) => c['graphql-sse'] }),
    total: t.int({ resolve: (c) => c.ws + c.sse + c['graphql-sse'] }),
  }),
});

const InstanceStatsRef = builder.objectRef<InstanceStats>('InstanceStats').implement({
  description: "One server instance's health, sampled every SERVER_STATS_INTERVAL_MS.",
  fields: (t) => ({
    instanceId: t.exposeID('instanceId'),
    startedAt: t.expose('startedAt', { type: 'DateTime' }),
    uptimeSeconds: t.exposeFloat('uptimeSeconds'),
    connections: t.field({ type: TransportCountsRef, resolve: (s) => s.connections }),
    subscriptions: t.field({ type: TransportCountsRef, resolve: (s) => s.subscriptions }),
    eventsDeliveredPerSecond: t.exposeFloat('eventsDeliveredPerSecond', {
      description: 'Subscription results written to clients, over the last interval.',
    }),
    deliveryLagP99Ms: t.exposeFloat('deliveryLagP99Ms', {
      nullable: true,
      description:
        'Publish to write, 99th percentile over the last minute (histogram bucket bound; the largest lag above 10 s); null without deliveries in that minute.',
    }),
    votesPerSecond: t.exposeFloat('votesPerSecond', {
      description: 'Successful castVote operations, over the last interval.',
    }),
    operationsPerSecond: t.exposeFloat('operationsPerSecond'),
    errorRate: t.exposeFloat('errorRate', {
      description: 'Share of operations that ended with an error code, over the last interval (0..1).',
    }),
    memoryRssBytes: t.exposeFloat('memoryRssBytes'),
    heapUsedBytes: t.exposeFloat('heapUsedBytes'),
    cpuPercent: t.exposeFloat('cpuPercent', { description: 'Process CPU over the last interval; 100 = one core.' }),
    sampledAt: t.expose('sampledAt', { type: 'DateTime' }),
  }),
});

const ServerStatsRef = builder.objectRef<ServerStats>('ServerStats').implement({
  description: 'Every live instance (sharing Redis) and their sums: the health indicators of a live event.',
  fields: (t) => ({
    instances: t.field({ type: [InstanceStatsRef], resolve: (s) => s.instances }),
    connections: t.field({ type: TransportCountsRef, resolve: (s) => s.connections }),
    subscriptions: t.field({ type: TransportCountsRef, resolve: (s) => s.subscriptions }),
    eventsDeliveredPerSecond: t.exposeFloat('eventsDeliveredPerSecond'),
    votesPerSecond: t.exposeFloat('votesPerSecond'),
    errorRate: t.exposeFloat('errorRate'),
    deliveryLagP99Ms: t.exposeFloat('deliveryLagP99Ms', { nullable: true, description: 'The worst instance’s.' }),
    generatedAt: t.expose('generatedAt', { type: 'DateTime' }),
  }),
});

builder.queryField('serverStats', (t) =>
  t.field({
    type: ServerStatsRef,
    description:
      'ADMIN. The cluster view: every live instance with its connections, subscriptions, rates, memory and CPU.',
    authScopes: { admin: true },
    resolve: (_root, _args, ctx) => ctx.services.serverStats.stats(),
  }),
);

builder.subscriptionField('serverStatsUpdated', (t) =>
  t.field({
    // The same view for every admin: one execution for all of them; a slow one gets the newest.
    delivery: { kind: 'snapshot', shared: true },
    type: ServerStatsRef,
    description: 'ADMIN. serverStats now, then every SERVER_STATS_INTERVAL_MS.',
    authScopes: { admin: true },
    subscribe: (_root, _args, ctx) =>
      everyInterval(() => ctx.services.serverStats.stats(), ctx.services.serverStats.intervalMs),
    resolve: (stats) => stats,
  }),
);
