/**
 * The rate-limit store and the live-subscription counter on Redis, shared by every instance:
 * each check is one Lua script call (rate-limit.lua.ts: HIT for sliding-log rules, BUCKET for
 * token-bucket rules), atomic on the server, so limits are exact across instances under any
 * concurrency. Keys use a hash tag per identity and rule.
 */
import { createHash } from 'node:crypto';
import { pipelines, type RedisClient } from '../infra/redis.js';
import { bindScripts } from '../infra/redis-scripts.js';
import { BUCKET, HIT, LIVE_ACQUIRE, LIVE_HEARTBEAT, LIVE_RELEASE } from './rate-limit.lua.js';
import type { RateLimitStore } from './rate-limit.js';
import type { LiveSubscriptionCounter } from './subscription-limits.js';

/** Keys hold user ids and IPs as given; hash long ones so a key stays small. */
function keyPart(text: string): string {
  return text.length <= 200 ? text : `h:${createHash('sha256').update(text).digest('base64url')}`;
}

export function createRedisRateLimitStore(deps: {
  redis: RedisClient;
  instanceId: string;
  prefix?: string;
}): RateLimitStore {
  const { redis, instanceId } = deps;
  const prefix = deps.prefix ?? 'rl';
  const scripts = bindScripts(redis, { HIT, BUCKET });
  let counter = 0;
  return {
    async hit(key, limit, escalation) {
      const base = `${prefix}:{${keyPart(key)}}`;
      const blocks = [escalation.blockBaseMs, escalation.blockMaxMs, escalation.strikeTtlMs];
      const reply =
        limit.burst === undefined
          ? await scripts.HIT(
              [`${base}:log`, `${base}:strikes`, `${base}:block`],
              [
                limit.windowMs,
                limit.max,
                `${instanceId}:${(counter = (counter + 1) % Number.MAX_SAFE_INTEGER)}`, // call id
                ...blocks,
              ],
            )
          : await scripts.BUCKET(
              [`${base}:bucket`, `${base}:strikes`, `${base}:block`],
              [limit.windowMs, limit.max, limit.burst, ...blocks],
            );
      return {
        admitted: reply[0] === 1,
        remaining: Number(reply[1]),
        retryAfterMs: Number(reply[2]),
        strikes: Number(reply[3]),
        struck: reply[4] === 1,
      };
    },
    close: async () => undefined,
  };
}

export function createRedisLiveSubscriptionCounter(deps: {
  redis: RedisClient;
  instanceId: string;
  /** An instance that stops heartbeating for this long no longer counts. Default 30 s. */
  ttlMs?: number;
  prefix?: string;
  onError?: (error: unknown) => void;
}): LiveSubscriptionCounter {
  const { redis, instanceId, ttlMs = 30_000 } = deps;
  const prefix = deps.prefix ?? 'rl';
  const hashKey = (identity: string) => `${prefix}:{live:${keyPart(identity)}}`;
  const scripts = bindScripts(redis, { LIVE_ACQUIRE, LIVE_RELEASE, LIVE_HEARTBEAT });
  /** Live subscriptions this instance holds, per identity hash key. */
  const held = new Map<string, number>();

  async function heartbeat(): Promise<void> {
    const keys = [...held.keys()];
    // A pipeline per 1,000 identities keeps each batch bounded.
    for (let i = 0; i < keys.length; i += 1_000) {
      await scripts.LIVE_HEARTBEAT.many(
        keys.slice(i, i + 1_000).map((key) => ({ keys: [key], args: [instanceId, ttlMs] })),
      );
    }
  }
  const timer = setInterval(
    () => void heartbeat().catch((error) => deps.onError?.(error)),
    Math.max(100, Math.floor(ttlMs / 3)),
  );
  timer.unref();

  return {
    async acquire(identity, max) {
      const key = hashKey(identity);
      const reply = await scripts.LIVE_ACQUIRE([key], [instanceId, max, ttlMs]);
      if (reply[0] !== 1) return { admitted: false, current: Number(reply[1]) };
      held.set(key, (held.get(key) ?? 0) + 1);
      let released = false;
      return {
        admitted: true,
        current: Number(reply[1]),
        release() {
          if (released) return;
          released = true;
          const left = (held.get(key) ?? 1) - 1;
          if (left > 0) held.set(key, left);
          else held.delete(key);
          void scripts.LIVE_RELEASE([key], [instanceId]).catch((error) => deps.onError?.(error));
        },
      };
    },
    async count(identity) {
      const fields = await redis.hgetall(hashKey(identity));
      // Counts only: `@<instance>` fields are heartbeat deadlines.
      return Object.entries(fields).reduce(
        (sum, [f, v]) => (f.startsWith('@') ? sum : sum + Math.max(0, Number(v))),
        0,
      );
    },
    async close() {
      clearInterval(timer);
      const keys = [...held.keys()];
      held.clear();
      await pipelines(
        redis,
        keys.map((key) => ({ key, queue: (pipeline) => void pipeline.hdel(key, instanceId, `@${instanceId}`) })),
      ).catch(() => undefined);
    },
  };
}
