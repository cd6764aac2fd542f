/**
 * FraudStateStore on Redis, shared by every instance: one Lua script per checked action records
 * it in every window and returns every count (EVALSHA: one round trip, atomic on the server).
 * Every window is a sorted set scored by the action time the instance passes in (its clock, as
 * for the memory store), so both stores count identically; PEXPIRE only collects idle keys.
 * Distinct-account sets use ZADD GT (a member's score only moves forward; Redis ≥ 6.2).
 *
 * Decision counters (fraudStats) are buffered per instance and flushed with HINCRBY every
 * second, so they cost the hot path nothing; reads add what is not flushed yet.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
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

/**
 * KEYS  1 user timeline, 2 ip accounts, 3 ip instant accounts, 4 ip quick accounts, then
 *       [device accounts] if ARGV[6] = 1, then [ballot repeats, ip ballot accounts] if
 *       ARGV[7] = 1, then [user target] if ARGV[17] = 1
 * ARGV  1 at, 2 observation id, 3 user id, 4 instant (1/0), 5 recent times to return,
 *       6 has device, 7 has ballot, 8 since 10 s, 9 since 60 s, 10 since user window,
 *       11 since group window, 12 timeline cap, 13 group cap, 14 user ttl ms, 15 group ttl ms,
 *       16 quick (1/0), 17 adjustable (1/0)
 * Returns {n10, n60, n10m, ipUsers, ipInstant, device|-1, repeats|-1, ipBallot|-1, {member, score, ...},
 *          ipQuick, adjustment (1/0)}
 */
const OBSERVE = `
local at = ARGV[1]
local function trimCard(key, since, cap)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. since)
  local n = redis.call('ZCARD', key)
  if n > cap then
    redis.call('ZREMRANGEBYRANK', key, 0, n - cap - 1)
    n = cap
  end
  return n
end
local function timeline(key, since, cap, ttl)
  redis.call('ZADD', key, at, ARGV[2])
  local n = trimCard(key, since, cap)
  redis.call('PEXPIRE', key, ttl)
  return n
end
local function group(key, cap)
  redis.call('ZADD', key, 'GT', at, ARGV[3])
  local n = trimCard(key, ARGV[11], cap)
  redis.call('PEXPIRE', key, ARGV[15])
  return n
end
local userCap = tonumber(ARGV[12])
local groupCap = tonumber(ARGV[13])
local k = 5
local device = -1
if ARGV[6] == '1' then
  device = group(KEYS[k], groupCap)
  k = k + 1
end
local repeats = -1
local ipBallot = -1
if ARGV[7] == '1' then
  repeats = timeline(KEYS[k], ARGV[10], userCap, ARGV[14])
  ipBallot = group(KEYS[k + 1], groupCap)
  k = k + 2
end
local adjustment = 0
if ARGV[17] == '1' and timeline(KEYS[k], ARGV[10], userCap, ARGV[14]) > 1 then adjustment = 1 end
local user = KEYS[1]
local n10m
if adjustment == 1 then n10m = trimCard(user, ARGV[10], userCap) else n10m = timeline(user, ARGV[10], userCap, ARGV[14]) end
local n60 = redis.call('ZCOUNT', user, ARGV[9], '+inf')
local n10 = redis.call('ZCOUNT', user, ARGV[8], '+inf')
local recent = redis.call('ZRANGE', user, -tonumber(ARGV[5]), -1, 'WITHSCORES')
local ipUsers = group(KEYS[2], groupCap)
local function subgroup(key, member)
  if member == '1' then return group(key, groupCap) end
  return trimCard(key, ARGV[11], groupCap)
end
local instant = subgroup(KEYS[3], ARGV[4])
local quick = subgroup(KEYS[4], ARGV[16])
return {n10, n60, n10m, ipUsers, instant, device, repeats, ipBallot, recent, quick, adjustment}`;

interface Script {
  source: string;
  sha: string;
}
const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const OBSERVE_SCRIPT = script(OBSERVE);

const STATS_TTL_MS = 30 * 24 * 3600_000;
const FLUSH_MS = 1_000;

export function createRedisFraudStore(opts: { redis: Redis; flushMs?: number }): FraudStateStore {
  const { redis } = opts;
  /** Decision counts not yet flushed, by stats key. */
  const pending = new Map<string, DecisionCounts>();
  let flushing: Promise<void> | undefined;

  async function run(s: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(s.source, keys.length, ...keys, ...args);
    }
  }

  async function flush(): Promise<void> {
    if (pending.size === 0) return;
    const batch = [...pending];
    pending.clear();
    const pipeline = redis.pipeline();
    for (const [key, counts] of batch) {
      for (const field of ['allowed', 'flagged', 'blocked'] as const) if (counts[field] > 0) pipeline.hincrby(key, field, counts[field]);
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
      if (hasBallot) keys.push(fraudKeys.ballotRepeats(o.userId, o.scopeId, o.ballot!), fraudKeys.ipBallot(o.scopeId, o.ip, o.target!));
      if (adjustable) keys.push(fraudKeys.userTarget(o.userId, o.scopeId, o.target!));
      const reply = (await run(OBSERVE_SCRIPT, keys, [
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
      ])) as [number, number, number, number, number, number, number, number, string[], number, number];
      const [n10, n60, n10m, ipUsers, ipInstantUsers, device, repeats, ipBallot, recent, ipQuickUsers, adjustment] = reply;
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
        for (const field of ['allowed', 'flagged', 'blocked'] as const) total[field] += Number(stored[field] ?? 0) + (local?.[field] ?? 0);
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
