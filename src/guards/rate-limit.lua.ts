/**
 * The Redis scripts of the rate limiter, one atomic step each (src/infra/redis-scripts.ts runs
 * them). They live in a .ts module rather than a .lua file so that `npm run build` (tsc) ships
 * them in dist/ with the code that loads them (the Docker image copies dist/ only). Time is
 * Redis's own (TIME), so instances with skewed clocks still share one window.
 */
import { defineScript, LUA_NOW_MS } from '../infra/redis-scripts.js';

/** { admitted (1|0), remaining, retryAfterMs, strikes, struck (1 = this refusal is a new strike) } */
export type RateReply = [admitted: number, remaining: number, retryAfterMs: number, strikes: number, struck?: number];

/**
 * The refusal step HIT and BUCKET share: one more strike, and a block of
 * base * 2^(strikes - 1) (capped), or until the limit frees a call (`frees`, ms) if later.
 * Expects `frees` set, KEYS[2] (strikes), KEYS[3] (block) and ARGV[4..6] as HIT documents them.
 */
const STRIKE = `
local strikes = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[6]))
local block = 0
local base = tonumber(ARGV[4])
if base > 0 then
  local exponent = strikes - 1
  if exponent > 40 then exponent = 40 end
  block = math.min(base * 2 ^ exponent, tonumber(ARGV[5]))
end
local retry = math.floor(math.max(frees, block))
if block > 0 then redis.call('SET', KEYS[3], '1', 'PX', retry) end
return { 0, 0, retry, strikes, 1 }
`;

/** Refused while blocked: the block's time left, no new strike. */
const WHILE_BLOCKED = `
local blocked = redis.call('PTTL', KEYS[3])
if blocked > 0 then
  return { 0, 0, blocked, tonumber(redis.call('GET', KEYS[2]) or '0'), 0 }
end
`;

/**
 * HIT: sliding-log rate limit with escalating blocks.
 *
 * KEYS[1]  rl:{<identity>|<field identity>}:log      ZSET   member = call id, score = admission time (ms)
 * KEYS[2]  rl:{<identity>|<field identity>}:strikes  STRING violations; expires ARGV[6] ms after the last
 * KEYS[3]  rl:{<identity>|<field identity>}:block    STRING exists while blocked; its PTTL is the time left
 * ARGV[1]  window (ms)
 * ARGV[2]  max admitted calls per window
 * ARGV[3]  call id, unique per call (instance id + counter)
 * ARGV[4]  block base (ms; 0 = never block, only wait for the window)
 * ARGV[5]  block cap (ms)
 * ARGV[6]  strike memory (ms)
 * Returns  { admitted (1|0), remaining, retryAfterMs, strikes, struck (refusals: 1 = a new strike) }
 *
 * A call is admitted iff fewer than max calls were admitted in (now - window, now]; refused calls
 * are not logged. The first refusal of an episode is a strike and blocks for
 * base * 2^(strikes - 1) (capped), or until the window frees a slot if later; refusals during a
 * block add no strike.
 *
 * Slot: KEYS[2] and KEYS[3] share KEYS[1]'s hash tag {<identity>}: one slot.
 */
export const HIT = defineScript<RateReply>({
  name: 'rateLimitHit',
  keys: 3,
  lua: `${LUA_NOW_MS}
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
${WHILE_BLOCKED}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < max then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  return { 1, max - count - 1, 0, 0 }
end

local frees = window
local oldest = redis.call('ZRANGE', KEYS[1], count - max, count - max, 'WITHSCORES')
if oldest[2] then frees = tonumber(oldest[2]) + window - now end
if frees < 1 then frees = 1 end
${STRIKE}`,
});

/**
 * BUCKET: token bucket with the same escalating blocks as HIT.
 *
 * KEYS[1]  rl:{<identity>|<field identity>}:bucket   HASH   d = debt, t = when it was computed (ms);
 *                                                           expires when the bucket is full again
 * KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[4..6]     as HIT (ARGV[2]: tokens refilled per window)
 * ARGV[3]  burst: the bucket's size
 * Returns  { admitted (1|0), remaining tokens, retryAfterMs, strikes, struck (refusals: 1 = a new strike) }
 *
 * One token comes back every window / max ms, up to burst. In integers (a token every 333.3 ms
 * must not drift): each admitted call adds `window` to the debt, each millisecond pays `max` back
 * (never below 0), and a call is admitted iff debt + window <= burst * window. Refused calls add
 * nothing; retryAfter is when the debt has come down far enough, or the block's end. This is GCRA
 * with its theoretical arrival time scaled by max. Mirrored step for step by rate-limit.memory.ts.
 *
 * Slot: as HIT, one hash tag {<identity>}.
 */
export const BUCKET = defineScript<RateReply>({
  name: 'rateLimitBucket',
  keys: 3,
  lua: `${LUA_NOW_MS}
${WHILE_BLOCKED}
local window = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local capacity = tonumber(ARGV[3]) * window
local state = redis.call('HMGET', KEYS[1], 'd', 't')
local debt = math.max(0, (tonumber(state[1]) or 0) - (now - (tonumber(state[2]) or now)) * max)
if debt + window <= capacity then
  debt = debt + window
  redis.call('HSET', KEYS[1], 'd', debt, 't', now)
  redis.call('PEXPIRE', KEYS[1], math.ceil(debt / max))
  return { 1, math.floor((capacity - debt) / window), 0, 0 }
end

local frees = math.ceil((debt + window - capacity) / max)
${STRIKE}`,
});

/**
 * LIVE_ACQUIRE: one more live subscription for an identity, if it holds fewer than max on every
 * instance together.
 *
 * KEYS[1]  rl:{live:<identity>}   HASH  <instance id>  -> live subscriptions it holds for the identity
 *                                       @<instance id> -> its heartbeat deadline (ms); an instance
 *                                       past it (dead) stops counting and its fields are dropped
 * ARGV[1]  this instance's id
 * ARGV[2]  max
 * ARGV[3]  heartbeat ttl (ms)
 * Returns  { admitted (1|0), live subscriptions of the identity (after this one when admitted) }
 *
 * Slot: one key. Each identity's hash holds the deadlines of the instances counted in it (not
 * one key of deadlines for all), so the script needs no other slot on Redis Cluster.
 */
export const LIVE_ACQUIRE = defineScript<[admitted: number, live: number]>({
  name: 'liveSubscriptionAcquire',
  keys: 1,
  lua: `${LUA_NOW_MS}
local fields = redis.call('HGETALL', KEYS[1])
local deadline = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 1) == '@' then deadline[string.sub(fields[i], 2)] = tonumber(fields[i + 1]) end
end
local total = 0
for i = 1, #fields, 2 do
  local instance = fields[i]
  if string.sub(instance, 1, 1) ~= '@' then
    local n = tonumber(fields[i + 1]) or 0
    if instance ~= ARGV[1] then
      local until_ = deadline[instance]
      if (not until_) or until_ < now then
        redis.call('HDEL', KEYS[1], instance, '@' .. instance)
        n = 0
      end
    end
    if n > 0 then total = total + n end
  end
end
if total >= tonumber(ARGV[2]) then return { 0, total } end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HSET', KEYS[1], '@' .. ARGV[1], now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
return { 1, total + 1 }`,
});

/**
 * LIVE_RELEASE: one live subscription fewer.
 * KEYS[1]  rl:{live:<identity>}   ARGV[1] this instance's id
 * Returns  what the instance still holds for the identity
 * Slot: one key.
 */
export const LIVE_RELEASE = defineScript<number>({
  name: 'liveSubscriptionRelease',
  keys: 1,
  lua: `local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1], '@' .. ARGV[1]) end
return n`,
});

/**
 * LIVE_HEARTBEAT: this instance is alive and still holds subscriptions of this identity.
 * KEYS[1]  rl:{live:<identity>}   ARGV[1] this instance's id   ARGV[2] heartbeat ttl (ms)
 * Returns  1 (0 when the instance's count is gone: expired or taken by another's ACQUIRE)
 * Slot: one key (the store sends one call per identity, pipelined).
 */
export const LIVE_HEARTBEAT = defineScript<0 | 1>({
  name: 'liveSubscriptionHeartbeat',
  keys: 1,
  lua: `${LUA_NOW_MS}
local ttl = tonumber(ARGV[2])
if not redis.call('HGET', KEYS[1], ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], '@' .. ARGV[1], now + ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return 1`,
});
