/**
 * GraphqlSseStore in this process's memory (one process: no REDIS_URL). A reservation not
 * connected is forgotten reservationTtlMs after its PUT (a timer); a connected one stays until its
 * stream ends (`release`).
 */
import type { GraphqlSseStore, PendingOperation } from './graphql-sse.store.js';

interface Entry {
  owner: string | undefined;
  pending: Map<string, PendingOperation>;
  expiry: NodeJS.Timeout | undefined;
}

export function createMemoryGraphqlSseStore(deps: { reservationTtlMs: number }): GraphqlSseStore {
  const entries = new Map<string, Entry>();
  const where = (entry: Entry | undefined) =>
    entry === undefined
      ? ({ state: 'unknown' } as const)
      : entry.owner === undefined
        ? ({ state: 'reserved' } as const)
        : ({ state: 'connected', owner: entry.owner } as const);

  return {
    async reserve(token) {
      const entry: Entry = { owner: undefined, pending: new Map(), expiry: undefined };
      entry.expiry = setTimeout(() => {
        if (entries.get(token) === entry) entries.delete(token);
      }, deps.reservationTtlMs);
      entry.expiry.unref();
      entries.set(token, entry);
    },
    async connect(token, owner) {
      const entry = entries.get(token);
      if (!entry) return 'unknown';
      if (entry.owner !== undefined) return 'open';
      clearTimeout(entry.expiry);
      entry.owner = owner;
      const pending = [...entry.pending.values()];
      entry.pending.clear();
      return { pending };
    },
    locate: async (token) => where(entries.get(token)),
    async enqueue(token, operation, max) {
      const entry = entries.get(token);
      if (!entry || entry.owner !== undefined) return where(entry);
      if (entry.pending.has(operation.id)) return 'duplicate';
      if (entry.pending.size >= max) return 'full';
      entry.pending.set(operation.id, operation);
      return 'queued';
    },
    async dequeue(token, operationId) {
      const entry = entries.get(token);
      if (!entry || entry.owner !== undefined) return where(entry);
      entry.pending.delete(operationId);
      return 'removed';
    },
    async release(token) {
      const entry = entries.get(token);
      if (!entry) return;
      clearTimeout(entry.expiry);
      entries.delete(token);
    },
    async close() {
      for (const entry of entries.values()) clearTimeout(entry.expiry);
      entries.clear();
    },
  };
}
