/**
 * One hash, `ovation:server-stats`: a field per instance, its value the sample as JSON with its
 * expiry. Readers skip (and delete) expired fields, so an instance that died without removing its
 * own drops out after its TTL. A hash field has no TTL of its own (before Redis 7.4): hence the
 * expiry inside the value. Deleting an expired field twice is harmless; a sample put meanwhile
 * is only lost until its instance's next put (one interval).
 */
import type { RedisClient } from '../../infra/redis.js';
import type { InstanceStats } from './ops.stats.store.js';
import type { ServerStatsStore } from './ops.stats.store.js';

const KEY = 'ovation:server-stats';

export function createRedisServerStatsStore(deps: {
  redis: RedisClient;
  key?: string;
  now?: () => number;
}): ServerStatsStore {
  const { redis } = deps;
  const key = deps.key ?? KEY;
  const now = deps.now ?? Date.now;
  return {
    async put(stats, ttlMs) {
      await redis.hset(key, stats.instanceId, JSON.stringify({ expiresAt: now() + ttlMs, stats }));
    },
    async list() {
      const entries = await redis.hgetall(key);
      const t = now();
      const live: InstanceStats[] = [];
      const expired: string[] = [];
      for (const [id, raw] of Object.entries(entries)) {
        const entry = JSON.parse(raw) as { expiresAt: number; stats: InstanceStats };
        if (entry.expiresAt > t) live.push(entry.stats);
        else expired.push(id);
      }
      if (expired.length > 0) await redis.hdel(key, ...expired);
      return live;
    },
    async remove(instanceId) {
      await redis.hdel(key, instanceId);
    },
  };
}
