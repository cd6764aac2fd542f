/**
 * FraudStateStore on Redis, shared by every instance: per checked action, one Lua script per
 * entity (the user's windows, the address's, the device's; fraud.lua.ts) records it in every
 * window and returns every count, all in one pipeline (one round trip on one server; one slot per
 * script on a cluster).
 * Every window is a sorted set scored by the action time the instance passes in (its clock, as
 * for the memory store), so both stores count identically; PEXPIRE only collects idle keys.
 * Distinct-account sets use ZADD GT (a member's score only moves forward; Redis ≥ 6.2).
 *
 * Decision counters (fraudStats) are buffered per instance and flushed with HINCRBY every
 * second, so they cost the hot path nothing; reads add what is not flushed yet.
 */
import type { ChainableCommander } from 'ioredis';
import { pipelines, type RedisClient } from '../../infra/redis.js';
import { bindScripts, type ReplyOf } from '../../infra/redis-scripts.js';
import { GROUPS, USER } from './fraud.lua.js';
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

export function createRedisFraudStore(opts: { redis: RedisClient; flushMs?: number }): FraudStateStore {
  const { redis } = opts;
  const scripts = bindScripts(redis, { USER, GROUPS });
  /** Decision counts not yet flushed, by stats key. */
  const pending = new Map<string, DecisionCounts>();
  let flushing: Promise<void> | undefined;

  async function flush(): Promise<void> {
    if (pending.size === 0) return;
    const batch = [...pending];
    pending.clear();
    const groups = batch.map(([key, counts]) => ({
      key,
      queue(pipeline: ChainableCommander) {
        for (const field of ['allowed', 'flagged', 'blocked'] as const)
          if (counts[field] > 0) pipeline.hincrby(key, field, counts[field]);
        pipeline.pexpire(key, STATS_TTL_MS);
      },
    }));
    try {
      await pipelines(redis, groups);
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
      const hasBallot = o.ballot !== null && o.target !== null;
      const adjustable = o.adjustable && o.target !== null;
      const userKeys = [fraudKeys.user(o.kind, o.userId)];
      if (adjustable) userKeys.push(fraudKeys.userTarget(o.userId, o.scopeId, o.target!));
      if (hasBallot) userKeys.push(fraudKeys.ballotRepeats(o.userId, o.scopeId, o.ballot!));
      const ipKeys = [
        fraudKeys.ip(o.kind, o.scopeId, o.ip),
        fraudKeys.ipInstant(o.kind, o.scopeId, o.ip),
        fraudKeys.ipQuick(o.kind, o.ip),
      ];
      const ipJoins = [1, o.instantAccount ? 1 : 0, o.quickAccount ? 1 : 0];
      if (hasBallot) {
        ipKeys.push(fraudKeys.ipBallot(o.scopeId, o.ip, o.target!));
        ipJoins.push(1);
      }
      const groupArgs = [o.at, o.userId, o.at - WINDOW.group, GROUP_CAP, WINDOW.group];
      const calls = [
        scripts.USER.queued({
          keys: userKeys,
          args: [
            o.at,
            o.id,
            RECENT_TIMES,
            o.at - WINDOW.burst,
            o.at - WINDOW.minute,
            o.at - WINDOW.user,
            USER_TIMELINE_CAP,
            WINDOW.user,
            adjustable ? 1 : 0,
            hasBallot ? 1 : 0,
          ],
        }),
        scripts.GROUPS.queued({ keys: ipKeys, args: [...groupArgs, ...ipJoins] }),
      ];
      if (o.deviceId !== null)
        calls.push(
          scripts.GROUPS.queued({ keys: [fraudKeys.device(o.kind, o.scopeId, o.deviceId)], args: [...groupArgs, 1] }),
        );
      const [user, ip, device] = (await pipelines(redis, calls)) as [
        ReplyOf<typeof USER>,
        number[],
        number[] | undefined,
      ];
      const [n10, n60, n10m, recent, repeats, adjustment] = user;
      const [ipUsers, ipInstantUsers, ipQuickUsers, ipBallot] = ip;
      const recentTimes: number[] = [];
      for (let i = 1; i < recent.length; i += 2) recentTimes.push(Number(recent[i]));
      return {
        adjustment: adjustment === 1,
        userActions10s: n10,
        userActions60s: n60,
        userActions10m: n10m,
        recentTimes,
        ipUsers: ipUsers!,
        ipInstantUsers: ipInstantUsers!,
        ipQuickUsers: ipQuickUsers!,
        deviceUsers: device ? device[0]! : null,
        ballotRepeats: repeats < 0 ? null : repeats,
        ipSameBallotUsers: ipBallot ?? null,
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
      const replies = await pipelines(
        redis,
        keys.map((key) => ({ key, queue: (pipeline) => void pipeline.hgetall(key) })),
      );
      for (const [i, hash] of replies.entries()) {
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
