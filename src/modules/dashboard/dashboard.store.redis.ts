/**
 * KEYS  viewers:{<competitionId>}:instances   set of instance ids that counted viewers lately
 *       viewers:{<competitionId>}:<instanceId> this instance's count, expires after ttlMs
 * Counts are written when they change (batched per tick) and refreshed every ttlMs / 3. A
 * competition's keys share its hash tag (one slot on Redis Cluster), so its writes are one
 * pipeline group and its MGET is one command.
 */
import { pipelines, type PipelineGroup, type RedisClient } from '../../infra/redis.js';
import { createMemoryViewerCounter } from './dashboard.store.memory.js';
import type { ViewerCounter } from './dashboard.store.js';

export function createRedisViewerCounter(deps: {
  redis: RedisClient;
  instanceId: string;
  ttlMs?: number;
}): ViewerCounter {
  const { redis, instanceId, ttlMs = 15_000 } = deps;
  const local = createMemoryViewerCounter();
  const tracked = new Set<string>();
  const dirty = new Set<string>();
  let flushTimer: NodeJS.Timeout | undefined;

  const instancesKey = (cid: string) => `viewers:{${cid}}:instances`;
  const countKey = (cid: string, instance: string) => `viewers:{${cid}}:${instance}`;
  const forget = (cid: string): PipelineGroup => ({
    key: instancesKey(cid),
    queue: (pipeline) => void pipeline.del(countKey(cid, instanceId)).srem(instancesKey(cid), instanceId),
  });

  async function write(competitionIds: Iterable<string>): Promise<void> {
    const groups: PipelineGroup[] = [];
    for (const cid of competitionIds) {
      const count = await local.count(cid);
      if (count > 0) {
        groups.push({
          key: instancesKey(cid),
          queue: (pipeline) =>
            void pipeline
              .set(countKey(cid, instanceId), count, 'PX', ttlMs)
              .sadd(instancesKey(cid), instanceId)
              .pexpire(instancesKey(cid), ttlMs * 4),
        });
      } else {
        groups.push(forget(cid));
        tracked.delete(cid);
      }
    }
    await pipelines(redis, groups);
  }

  const markDirty = (cid: string): void => {
    tracked.add(cid);
    dirty.add(cid);
    flushTimer ??= setTimeout(() => {
      flushTimer = undefined;
      const batch = [...dirty];
      dirty.clear();
      write(batch).catch(() => batch.forEach((c) => dirty.add(c)));
    }, 50);
  };

  const refresh = setInterval(() => void write([...tracked]).catch(() => undefined), Math.max(1_000, ttlMs / 3));
  refresh.unref();

  return {
    add(cid) {
      local.add(cid);
      markDirty(cid);
    },
    remove(cid) {
      local.remove(cid);
      markDirty(cid);
    },
    async count(cid) {
      const instances = await redis.smembers(instancesKey(cid));
      const others = instances.filter((id) => id !== instanceId);
      const values = others.length > 0 ? await redis.mget(others.map((id) => countKey(cid, id))) : [];
      const gone = others.filter((_, i) => values[i] === null);
      if (gone.length > 0) void redis.srem(instancesKey(cid), ...gone).catch(() => undefined);
      return (await local.count(cid)) + values.reduce((sum, v) => sum + (v === null ? 0 : Number(v)), 0);
    },
    async close() {
      clearInterval(refresh);
      clearTimeout(flushTimer);
      await pipelines(redis, [...tracked].map(forget)).catch(() => undefined);
    },
  };
}
