/**
 * The fraud store's Redis scripts (src/infra/redis-scripts.ts runs them); a .ts module so that tsc
 * ships them in dist/. One checked action is one USER call and one or two GROUPS calls (the
 * address's windows, the device's), sent together: one pipeline on one server. Each script is
 * atomic on its own keys; the windows of different entities need no common step.
 */
import { defineScript } from '../../infra/redis-scripts.js';

/** Sorted-set windows: trim by time and by size, record, expire. Shared by both scripts. */
const WINDOWS = `
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
`;

/**
 * USER: records the action in the user's timelines and returns their counts.
 *
 * KEYS  1 user timeline (ZSET observation id -> at), then [user target timeline] if ARGV[9] = 1,
 *       then [ballot repeats timeline] if ARGV[10] = 1 (fraudKeys in fraud.store.ts)
 * ARGV  1 at (ms), 2 observation id, 3 recent times to return, 4 since 10 s, 5 since 60 s,
 *       6 since user window, 7 timeline cap, 8 timeline ttl ms, 9 adjustable (1/0), 10 has ballot (1/0)
 * Returns {n10, n60, n10m, {member, score, ...}, repeats|-1, adjustment (1/0)}
 *
 * An adjustment (the user's second cast on the same target) is not a new action in the user's
 * timeline: it is counted only in the target's.
 *
 * Slot: every key carries the user's hash tag {u:<userId>}.
 */
export const USER = defineScript<
  [n10: number, n60: number, n10m: number, recent: string[], repeats: number, adjustment: number]
>({
  name: 'fraudObserveUser',
  keys: 'dynamic',
  lua: `${WINDOWS}
local cap = tonumber(ARGV[7])
local function timeline(key)
  redis.call('ZADD', key, at, ARGV[2])
  local n = trimCard(key, ARGV[6], cap)
  redis.call('PEXPIRE', key, ARGV[8])
  return n
end
local k = 2
local adjustment = 0
if ARGV[9] == '1' then
  if timeline(KEYS[k]) > 1 then adjustment = 1 end
  k = k + 1
end
local repeats = -1
if ARGV[10] == '1' then repeats = timeline(KEYS[k]) end
local user = KEYS[1]
local n10m
if adjustment == 1 then n10m = trimCard(user, ARGV[6], cap) else n10m = timeline(user) end
local n60 = redis.call('ZCOUNT', user, ARGV[5], '+inf')
local n10 = redis.call('ZCOUNT', user, ARGV[4], '+inf')
local recent = redis.call('ZRANGE', user, -tonumber(ARGV[3]), -1, 'WITHSCORES')
return {n10, n60, n10m, recent, repeats, adjustment}`,
});

/**
 * GROUPS: distinct-account windows (ZSET user id -> last seen); the user is added to each window
 * whose flag is 1, and every window is trimmed and counted.
 *
 * KEYS  the windows: for an address ip accounts, ip instant accounts, ip quick accounts, then
 *       [ip ballot accounts]; or a device's accounts alone (fraudKeys in fraud.store.ts)
 * ARGV  1 at (ms), 2 user id, 3 since group window, 4 group cap, 5 group ttl ms, then one flag
 *       per key: 1 = the user joins it, 0 = only counted
 * Returns the accounts in each window, in KEYS order
 *
 * Distinct-account sets use ZADD GT (a member's score only moves forward; Redis ≥ 6.2).
 * Slot: an address's keys carry its hash tag {ip:<ip>}; a device's call has one key.
 */
export const GROUPS = defineScript<number[]>({
  name: 'fraudObserveGroups',
  keys: 'dynamic',
  lua: `${WINDOWS}
local cap = tonumber(ARGV[4])
local counts = {}
for i, key in ipairs(KEYS) do
  if ARGV[5 + i] == '1' then
    redis.call('ZADD', key, 'GT', at, ARGV[2])
    counts[i] = trimCard(key, ARGV[3], cap)
    redis.call('PEXPIRE', key, ARGV[5])
  else
    counts[i] = trimCard(key, ARGV[3], cap)
  end
end
return counts`,
});
