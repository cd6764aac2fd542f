/**
 * FraudStateStore on Redis, shared by every instance: one Lua script per checked action records
 * it in every window and returns every count (fraud.lua.ts: one round trip, atomic on the server).
 * Every window is a sorted set scored by the action time the instance passes in (its clock, as
 * for the memory store), so both stores count identically; PEXPIRE only collects idle keys.
 * Distinct-account sets use ZADD GT (a member's score only moves forward; Redis ≥ 6.2).
 *
 * Decision counters (fraudStats) are buffered per instance and flushed with HINCRBY every
 * second, so they cost the hot path nothing; reads add what is not flushed yet.
 */
import type { Redis } from 'ioredis';
import { bindScripts } from '../../infra/redis-scripts.js';
import { OBSERVE } from './fraud.lua.js';
import { WINDOW, type FraudKind } from './fraud.rules.js';
import {
  ALL_SCOPES,
  emptyCounts,
  FIELD_OF,
  fraudKeys,
  GROUP_CAP,
  RECENT_TIMES,
  USER_TIMELINE_CAP,
  type DecisionCounts,
  type FraudStateStore,
  type ObservedCounts,
} from './fraud.store.js';

const STATS_TTL_MS = 30 * 24 * 3600_000;
const FLUSH_MS = 1_000;

export function createRedisFraudStore(opts: { redis: Redis; flushMs?: number }): FraudStateStore {
  const { redis } = opts;
  const scripts = bindScripts(redis, { OBSERVE });
  /** Decision counts not yet flushed, by stats key. */
  const pending = new Map<string, DecisionCounts>();
  let flushing: Promise<void> | undefined;

  async function flush(): Promise<void> {
    if (pending.size === 0) return;
    const batch = [...pending];
    pending.clear();
    const pipeline = redis.pipeline();
    for (const [key, counts] of batch) {
      for (const field of ['allowed', 'flagged', 'blocked'] as const)
        if (counts[field] > 0) pipeline.hincrby(key, field, counts[field]);
      pipeline.pexpire(key, STATS_TTL_MS);
    }
    try {
      await pipeline.exec();
    } catch {
      // Redis away: keep the counts for the next flush.
      for (const [key, counts] of batch) addTo(key, counts);
    }
  }

  function addTo(key: string, counts: DecisionCounts): void {
    let target = pending.get(key);
    if (!target) pending.set(key, (target = emptyCounts()));
    target.allowed += counts.allowed;
    target.flagged += counts.flagged;
    target.blocked += counts.blocked;
  }

  const timer = setInterval(() => {
    flushing ??= flush().finally(() => (flushing = undefined));
  }, opts.flushMs ?? FLUSH_MS);
  timer.unref();

  return {
    async observe(o) {
      const keys = [
        fraudKeys.user(o.kind, o.userId),
        fraudKeys.ip(o.kind, o.scopeId, o.ip),
        fraudKeys.ipInstant(o.kind, o.scopeId, o.ip),
        fraudKeys.ipQuick(o.kind, o.ip),
      ];
      const hasBallot = o.ballot !== null && o.target !== null;
      const adjustable = o.adjustable && o.target !== null;
      if (o.deviceId !== null) keys.push(fraudKeys.device(o.kind, o.scopeId, o.deviceId));
      if (hasBallot)
        keys.push(
          fraudKeys.ballotRepeats(o.userId, o.scopeId, o.ballot!),
          fraudKeys.ipBallot(o.scopeId, o.ip, o.target!),
        );
      if (adjustable) keys.push(fraudKeys.userTarget(o.userId, o.scopeId, o.target!));
      const reply = await scripts.OBSERVE(keys, [
        o.at,
        o.id,
        o.userId,
        o.instantAccount ? 1 : 0,
        RECENT_TIMES,
        o.deviceId !== null ? 1 : 0,
        hasBallot ? 1 : 0,
        o.at - WINDOW.burst,
        o.at - WINDOW.minute,
        o.at - WINDOW.user,
        o.at - WINDOW.group,
        USER_TIMELINE_CAP,
        GROUP_CAP,
        WINDOW.user,
        WINDOW.group,
        o.quickAccount ? 1 : 0,
        adjustable ? 1 : 0,
      ]);
      const [n10, n60, n10m, ipUsers, ipInstantUsers, device, repeats, ipBallot, recent, ipQuickUsers, adjustment] =
        reply;
      const recentTimes: number[] = [];
      for (let i = 1; i < recent.length; i += 2) recentTimes.push(Number(recent[i]));
      return {
        adjustment: adjustment === 1,
        userActions10s: n10,
        userActions60s: n60,
        userActions10m: n10m,
        recentTimes,
        ipUsers,
        ipInstantUsers,
        ipQuickUsers,
        deviceUsers: device < 0 ? null : device,
        ballotRepeats: repeats < 0 ? null : repeats,
        ipSameBallotUsers: ipBallot < 0 ? null : ipBallot,
      } satisfies ObservedCounts;
    },

    async claim(key, ttlMs) {
      return (await redis.set(fraudKeys.claim(key), '1', 'PX', ttlMs, 'NX')) === 'OK';
    },

    countDecision(kind: FraudKind, scopeId, verdict) {
      for (const scope of [scopeId, ALL_SCOPES]) {
        const counts = emptyCounts();
        counts[FIELD_OF[verdict]] = 1;
        addTo(fraudKeys.stats(kind, scope), counts);
      }
    },

    async decisions(kind, scopeIds) {
      const keys = (scopeIds ?? [ALL_SCOPES]).map((scope) => fraudKeys.stats(kind, scope));
      const total = emptyCounts();
      if (keys.length === 0) return total;
      const pipeline = redis.pipeline();
      for (const key of keys) pipeline.hgetall(key);
      const replies = (await pipeline.exec()) ?? [];
      for (const [i, [error, hash]] of replies.entries()) {
        if (error) throw error;
        const stored = hash as Record<string, string>;
        const local = pending.get(keys[i]!);
        for (const field of ['allowed', 'flagged', 'blocked'] as const)
          total[field] += Number(stored[field] ?? 0) + (local?.[field] ?? 0);
      }
      return total;
    },

    async close() {
      clearInterval(timer);
      await flushing;
      await flush();
    },
  };
}
