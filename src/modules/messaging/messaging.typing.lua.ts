/**
 * The typing store's Redis scripts (src/infra/redis-scripts.ts runs them); a .ts module so that
 * tsc ships them in dist/. Keys as messaging.typing.store.redis.ts describes them.
 *
 * Slot: every key starts with the store's prefix, the hash tag `{typing}` (tests pass their own
 * `{…}` prefix): one slot for the whole feature, so Redis Cluster runs these scripts as they are
 * (all typing traffic on one node).
 */
import { defineScript, LUA_NOW_MS } from '../../infra/redis-scripts.js';

/**
 * START: begins or refreshes a typing state; a new start at most once per minimum interval.
 * KEYS[1]  {typing}:expiries          KEYS[2] {typing}:seq      KEYS[3] {typing}:started:<member>
 * ARGV[1]  member (conversationId \n userId)   ARGV[2] conversationId
 * ARGV[3]  ttl (ms)                            ARGV[4] minimum interval between starts (ms)
 * Returns  {0, seq} started | {1, 0} refreshed | {2, retryAfterMs} throttled
 * Slot: KEYS[2] and KEYS[3] share KEYS[1]'s hash tag {typing}.
 */
export const START = defineScript<[code: 0 | 1 | 2, value: number]>({
  name: 'typingStart',
  keys: 3,
  lua: `${LUA_NOW_MS}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  return {1, 0}
end
local wait = redis.call('PTTL', KEYS[3])
if wait > 0 then return {2, wait} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return {0, redis.call('HINCRBY', KEYS[2], ARGV[2], 1)}`,
});

/**
 * STOP: ends a typing state.
 * KEYS[1]  {typing}:expiries   KEYS[2] {typing}:seq
 * ARGV[1]  member              ARGV[2] conversationId
 * Returns  0 (was not typing) | the conversation's new seq
 * Slot: KEYS[2] shares KEYS[1]'s hash tag {typing}.
 */
export const STOP = defineScript<number>({
  name: 'typingStop',
  keys: 2,
  lua: `if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[2], ARGV[2], 1)`,
});

/**
 * SWEEP: claims the typing states that expired (each exactly once across instances).
 * KEYS[1]  {typing}:expiries   KEYS[2] {typing}:seq
 * ARGV[1]  batch: at most this many members
 * Returns  {member, seq, member, seq, ...} claimed by this call
 * Slot: KEYS[2] shares KEYS[1]'s hash tag {typing}.
 */
export const SWEEP = defineScript<(string | number)[]>({
  name: 'typingSweep',
  keys: 2,
  lua: `${LUA_NOW_MS}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local nl = string.find(member, '\\n', 1, true)
  out[#out + 1] = member
  out[#out + 1] = redis.call('HINCRBY', KEYS[2], string.sub(member, 1, nl - 1), 1)
end
return out`,
});
