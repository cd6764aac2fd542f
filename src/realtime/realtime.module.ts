/**
 * The delivery side of every subscription, whatever its module: resume cursors, shared
 * executions, per-field backpressure (each Subscription field declares its `delivery`:
 * src/schema/delivery-plugin.ts), and the pruning of resume histories.
 */
import type { GraphQLSchema } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { ModuleContext } from '../modules/module.js';
import type { OpsHooks } from '../modules/ops/ops.metrics.registry.js';
import { useStreamCursors } from './cursors.js';
import { deliveryPoliciesOf, useDeliveryPolicies, type DeliveryStats } from './delivery.js';
import { createHistoryPruner } from './event-log.js';
import { useSharedSubscriptions, type SharedSubscriptionsPlugin } from './shared-subscriptions.js';

export interface RealtimeLayer {
  readonly sharedSubscriptions: SharedSubscriptionsPlugin;
  deliveryStats(): DeliveryStats;
  /** In pipeline order: cursors, shared executions, delivery policies. */
  readonly plugins: readonly Plugin[];
  close(): Promise<void>;
}

export function createRealtimeLayer(ctx: ModuleContext, schema: GraphQLSchema, observer?: OpsHooks): RealtimeLayer {
  const { config } = ctx;
  // Resume histories (event-log.ts) are kept RESUME_WINDOW_SECONDS, then pruned.
  const pruner = createHistoryPruner({
    prisma: ctx.prisma,
    windowSeconds: config.resumeWindowSeconds,
    onError: (error) => ctx.logger.warn('resume history prune failed; retrying', { error }),
  });
  const policies = deliveryPoliciesOf(schema);
  const sharedSubscriptions = useSharedSubscriptions({ policies, pacer: ctx.pacer, ...(observer && { observer }) });
  const delivery = useDeliveryPolicies({
    policies,
    maxClientBufferBytes: config.subscriptionClientBufferBytes,
    ...(observer && { observer }),
  });
  return {
    sharedSubscriptions,
    deliveryStats: () => delivery.stats(),
    plugins: [
      useStreamCursors(), // wraps graphql-js's subscribe directly: before sharedSubscriptions
      sharedSubscriptions,
      delivery, // after sharedSubscriptions: it leaves the operations they serve alone
    ],
    close: () => pruner.close(),
  };
}
