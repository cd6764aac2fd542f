/**
 * The guards, built once: auth (scope-auth, in the schema) → rate → fraud on every guarded field
 * (src/schema/guard-plugin.ts runs `guards.run`), and the pipeline's limits around operations:
 * document size and depth, live access on streams, subscription starts and per-user caps; and
 * connections that end with their token (a graphql-ws socket, a graphql-sse stream).
 */
import type { Plugin } from 'graphql-yoga';
import type { ModuleContext } from '../modules/module.js';
import type { OpsHooks } from '../modules/ops/ops.metrics.registry.js';
import type { ConnectionRegistry } from '../realtime/connections.js';
import type { UserAccess } from './access.js';
import { createGuards, type FraudGuard, type Guards } from './guards.js';
import { useQueryLimits } from './limits.js';
import { createRateLimiter, escalationFromConfig, rateRulesFromConfig } from './rate-limit.js';
import { guardConnections, useStreamGuards } from './streams.js';
import { useSubscriptionLimits } from './subscription-limits.js';

export interface GuardsLayer {
  readonly guards: Guards;
  /** In pipeline order: query limits, stream access, subscription limits. */
  readonly plugins: readonly Plugin[];
}

export function createGuardsLayer(
  ctx: ModuleContext,
  deps: {
    fraud: FraudGuard;
    access: UserAccess;
    /** Its connections end with their token (guardConnections). */
    connections: ConnectionRegistry;
    maskError: (error: unknown, message: string) => Error;
    observer?: OpsHooks;
  },
): GuardsLayer {
  const { config, logger } = ctx;
  deps.connections.observe(guardConnections(deps.access));
  // One atomic check per call in Redis when configured (exact across instances), else in memory;
  // the store is closed with the others (src/stores.ts).
  const rateLimiter = createRateLimiter({
    store: ctx.stores.rateLimit,
    rules: rateRulesFromConfig(config.rateLimit),
    escalation: escalationFromConfig(config.rateLimit),
    ipFactor: config.rateLimit.ipFactor,
    ...(deps.observer && { onRefused: deps.observer.rateLimited }),
  });
  return {
    guards: createGuards({ rate: rateLimiter, fraud: deps.fraud }),
    plugins: [
      useQueryLimits({
        maxDepth: config.limits.maxQueryDepth,
        maxComplexity: config.limits.maxQueryComplexity,
        maxTokens: config.limits.maxQueryTokens,
      }),
      useStreamGuards({ access: deps.access, maskError: deps.maskError }),
      useSubscriptionLimits({
        limiter: rateLimiter,
        live: ctx.stores.liveSubscriptions,
        maxPerUser: config.rateLimit.maxSubscriptionsPerUser,
        maxPerIp: config.rateLimit.maxSubscriptionsPerIp,
        onError: (message, details) => logger.warn(message, details),
      }),
    ],
  };
}
