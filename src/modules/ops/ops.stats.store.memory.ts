import type { InstanceStats } from './ops.stats.store.js';
import type { ServerStatsStore } from './ops.stats.store.js';

export function createMemoryServerStatsStore(now: () => number = Date.now): ServerStatsStore {
  const samples = new Map<string, { stats: InstanceStats; expiresAt: number }>();
  return {
    async put(stats, ttlMs) {
      samples.set(stats.instanceId, { stats, expiresAt: now() + ttlMs });
    },
    async list() {
      const t = now();
      for (const [id, entry] of samples) if (entry.expiresAt <= t) samples.delete(id);
      return [...samples.values()].map((entry) => entry.stats);
    },
    async remove(instanceId) {
      samples.delete(instanceId);
    },
  };
}
