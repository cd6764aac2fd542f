import type { ConnectionRegistry, ConnectionTransport } from '../../realtime/connections.js';
import type { Module, ModuleContext } from '../module.js';
import { usePresenceActivity } from './presence.plugin.js';
import { createPresenceService, MAX_PRESENCE_IDS, type PresenceService } from './presence.service.js';
import type { PresenceTransport } from './presence.tracker.js';

export interface PresenceModule extends Module<PresenceService> {
  /** How many live connections each user has across the cluster (every instance and transport). */
  connections(userIds: readonly string[]): Promise<ReadonlyMap<string, number>>;
}

const PRESENCE_TRANSPORT: Record<ConnectionTransport, PresenceTransport> = {
  ws: 'graphql-ws',
  sse: 'sse',
  'graphql-sse': 'sse',
};

/**
 * Presence derived from connections: entries with heartbeats in the store (Redis: every
 * instance's connections count, a dead instance's expire). Every connection that acts for a user
 * (src/realtime/connections.ts: a graphql-ws socket, an SSE stream, a graphql-sse stream, an
 * operation with its own token on graphql-ws) is an entry, opened before the transport
 * acknowledges the client and removed when it closes.
 */
export function createPresenceModule(ctx: ModuleContext, deps: { connections: ConnectionRegistry }): PresenceModule {
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
  const unobserve = deps.connections.observe((connection) => {
    if (!connection.viewer) return undefined;
    const lease = presence.tracker.open(connection.viewer.id, PRESENCE_TRANSPORT[connection.transport]);
    return { ready: lease.ready, closed: () => lease.close() };
  });
  return {
    service: presence,
    plugins: [usePresenceActivity({ tracker: presence.tracker })],
    async connections(userIds) {
      const counts = new Map<string, number>();
      for (let i = 0; i < userIds.length; i += MAX_PRESENCE_IDS) {
        for (const p of await presence.presence(userIds.slice(i, i + MAX_PRESENCE_IDS)))
          counts.set(p.userId, p.connections);
      }
      return counts;
    },
    async close() {
      unobserve();
      await presence.close(); // stops heartbeats and the sweeper; this instance's entries are removed
    },
  };
}
