/**
 * The fraud store's Redis script (src/infra/redis-scripts.ts runs it); a .ts module so that tsc
 * ships it in dist/.
 */
import { defineScript } from '../../infra/redis-scripts.js';

/**
 * OBSERVE: records one checked action in every window it counts in and returns every count.
 *
 * KEYS  1 user timeline, 2 ip accounts, 3 ip instant accounts, 4 ip quick accounts, then
 *       [device accounts] if ARGV[6] = 1, then [ballot repeats, ip ballot accounts] if
 *       ARGV[7] = 1, then [user target] if ARGV[17] = 1 (fraudKeys in fraud.store.ts)
 * ARGV  1 at, 2 observation id, 3 user id, 4 instant (1/0), 5 recent times to return,
 *       6 has device, 7 has ballot, 8 since 10 s, 9 since 60 s, 10 since user window,
 *       11 since group window, 12 timeline cap, 13 group cap, 14 user ttl ms, 15 group ttl ms,
 *       16 quick (1/0), 17 adjustable (1/0)
 * Returns {n10, n60, n10m, ipUsers, ipInstant, device|-1, repeats|-1, ipBallot|-1, {member, score, ...},
 *          ipQuick, adjustment (1/0)}
 *
 * Slot: none shared yet: the keys are per user, per scope and IP, per IP, per device, per ballot
 * and per target. On Redis Cluster they can share only a per-kind hash tag (`fraud:{vote}:…`: a
 * kind's whole traffic on one node), or the script splits into one per entity (user, IP, device)
 * and the counts stop being one atomic step.
 */
export const OBSERVE = defineScript<
  [
    n10: number,
    n60: number,
    n10m: number,
    ipUsers: number,
    ipInstant: number,
    device: number,
    repeats: number,
    ipBallot: number,
    recent: string[],
    ipQuick: number,
    adjustment: number,
  ]
>({
  name: 'fraudObserve',
  keys: 'dynamic',
  lua: `
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
return {n10, n60, n10m, ipUsers, instant, device, repeats, ipBallot, recent, quick, adjustment}`,
});
