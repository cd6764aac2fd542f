import type { Authenticator } from '../../guards/auth.js';
import { GRAPHQL_SSE_PATH } from '../../transport/http.js';
import type { Module, ModuleContext } from '../module.js';
import { usePresence } from './presence.plugin.js';
import { createPresenceService, MAX_PRESENCE_IDS, type PresenceService } from './presence.service.js';

export interface PresenceModule extends Module<PresenceService> {
  /** How many live connections each user has across the cluster (every instance and transport). */
  connections(userIds: readonly string[]): Promise<ReadonlyMap<string, number>>;
}

/**
 * Presence derived from connections: entries with heartbeats in the store (Redis: every
 * instance's connections count, a dead instance's expire). The transports open the entries
 * (graphql-ws per connection, SSE per stream through the plugin).
 */
export function createPresenceModule(ctx: ModuleContext, deps: { authenticator: Authenticator }): PresenceModule {
  const { config, logger } = ctx;
  const onError = (message: string, details: Record<string, unknown>): void => logger.error(message, details);
  const presence = createPresenceService({
    prisma: ctx.prisma,
    bus: ctx.bus,
    store: ctx.stores.presence,
    instanceId: ctx.instanceId,
    rules: { awayAfterMs: config.presenceAwayAfterMs, offlineGraceMs: config.presenceOfflineGraceMs },
    connectionTtlMs: config.presenceConnectionTtlMs,
    onError,
  });
  return {
    service: presence,
    plugins: [
      usePresence({
        tracker: presence.tracker,
        authenticator: deps.authenticator,
        graphqlSsePath: GRAPHQL_SSE_PATH,
        onError,
      }),
    ],
    async connections(userIds) {
      const counts = new Map<string, number>();
      for (let i = 0; i < userIds.length; i += MAX_PRESENCE_IDS) {
        for (const p of await presence.presence(userIds.slice(i, i + MAX_PRESENCE_IDS)))
          counts.set(p.userId, p.connections);
      }
      return counts;
    },
    close: () => presence.close(), // stops heartbeats and the sweeper; this instance's entries are removed
  };
}
