/**
 * The presence store's Redis scripts (src/infra/redis-scripts.ts runs them); a .ts module so
 * that tsc ships them in dist/. Every step is one script, atomic on the server, and reads the
 * server's clock (TIME), so instances with skewed clocks agree on expiry, grace and AWAY.
 *
 * KEYS (every script but DUE gets the same three, in this order: presenceKeys(userId); <p> is
 * the user's partition of the schedule, fixed by its id)
 *   KEYS[1] presence:{p<p>}:<userId>:c   ZSET  connectionId → expiresAt (ms). Live = score > now.
 *   KEYS[2] presence:{p<p>}:<userId>:s   HASH  v       version, +1 on every change of a fact
 *                                         ended   when the live count last fell to 0 (ms)
 *                                         act     last activity (ms)
 *                                         man     hand-set status (AWAY | DND), absent = none
 *                                         msg     status message
 *                                         dl      deadline: next change by time alone, or a recheck
 *                                         pv      last announced view (JSON), ps its status
 *                                         seq     its seq; pt the instant it was derived at
 *   KEYS[3] presence:{p<p>}:due          ZSET  userId → when a sweeper should reconcile the user:
 *                                         min(dl, first entry's expiry)
 * ARGV[1] is always the user id; the rest per script (see each one).
 *
 * Slot: the three keys share the partition's hash tag {p<p>}: one slot on Redis Cluster. The
 * schedule is partitioned (PRESENCE_PARTITIONS in presence.store.redis.ts) rather than one key,
 * so that it spreads over the masters; a sweep asks every partition. An OFFLINE user's hash
 * expires after `retainOfflineMs`.
 */
import { defineScript, LUA_NOW_MS } from '../../infra/redis-scripts.js';

/** READ's reply (see READ). */
export type ReadReply = (string | number | null)[];

const PRELUDE = `
local C, S, DUE = KEYS[1], KEYS[2], KEYS[3]
local UID = ARGV[1]
local function clock()
${LUA_NOW_MS}
  return now
end
local function num(value)
  if value then return tonumber(value) end
  return nil
end
-- Drops expired entries; when that empties the set, the last connection ended at the latest expiry.
local function sweep(now)
  local gone = redis.call('ZRANGEBYSCORE', C, '-inf', now, 'WITHSCORES')
  if #gone == 0 then return false end
  redis.call('ZREMRANGEBYSCORE', C, '-inf', now)
  if redis.call('ZCARD', C) == 0 then
    local last = tonumber(gone[#gone])
    local ended = num(redis.call('HGET', S, 'ended'))
    if not ended or last > ended then redis.call('HSET', S, 'ended', last) end
  end
  redis.call('HINCRBY', S, 'v', 1)
  return true
end
local function schedule()
  local at = num(redis.call('HGET', S, 'dl'))
  local first = redis.call('ZRANGE', C, 0, 0, 'WITHSCORES')
  if first[2] then
    local expires = tonumber(first[2])
    if not at or expires < at then at = expires end
  end
  if at then redis.call('ZADD', DUE, at, UID) else redis.call('ZREM', DUE, UID) end
end
-- A fact changed: a sweeper looks at the user within recheck ms, in case this instance dies
-- before it announces the change itself.
local function changed(now, recheck)
  redis.call('HINCRBY', S, 'v', 1)
  local dl = num(redis.call('HGET', S, 'dl'))
  if not dl or now + recheck < dl then redis.call('HSET', S, 'dl', now + recheck) end
  schedule()
end
local function present(now, grace)
  if redis.call('ZCARD', C) > 0 then return true end
  local ended = num(redis.call('HGET', S, 'ended'))
  return ended ~= nil and now < ended + grace
end
`;

/**
 * A script on one user's keys: the PRELUDE, then its own steps.
 * Slot: the three keys share the partition's hash tag {p<p>} (see above).
 */
const perUser = <Reply>(name: string, steps: string) => defineScript<Reply>({ name, keys: 3, lua: PRELUDE + steps });

/** ARGV: userId, connectionId, ttlMs, graceMs, recheckMs. Returns 1 opened, 0 announce OFFLINE first. */
export const OPEN = perUser<number>(
  'presenceOpen',
  `
local now = clock()
sweep(now)
if redis.call('ZCARD', C) == 0 then
  local ps = redis.call('HGET', S, 'ps')
  if ps and ps ~= 'OFFLINE' and not present(now, tonumber(ARGV[4])) then return 0 end
end
redis.call('ZADD', C, now + tonumber(ARGV[3]), ARGV[2])
redis.call('HSET', S, 'act', now)
redis.call('PERSIST', S)
changed(now, tonumber(ARGV[5]))
return 1`,
);

/** ARGV: userId, connectionId, recheckMs. Returns 1 removed, 0 not there. */
export const CLOSE = perUser<number>(
  'presenceClose',
  `
local now = clock()
if sweep(now) then schedule() end
if redis.call('ZREM', C, ARGV[2]) == 0 then return 0 end
if redis.call('ZCARD', C) == 0 then redis.call('HSET', S, 'ended', now) end
changed(now, tonumber(ARGV[3]))
return 1`,
);

/** ARGV: userId, ttlMs, connectionId... Returns the connection ids that were not live. */
export const HEARTBEAT = perUser<string[]>(
  'presenceHeartbeat',
  `
local now = clock()
sweep(now)
local missing = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', C, ARGV[i]) then
    redis.call('ZADD', C, 'XX', now + tonumber(ARGV[2]), ARGV[i])
  else
    missing[#missing + 1] = ARGV[i]
  end
end
if redis.call('EXISTS', S) == 1 then schedule() end
return missing`,
);

/** ARGV: userId, recheckMs. Returns 1 when an announced automatic AWAY may end. */
export const ACTIVITY = perUser<number>(
  'presenceActivity',
  `
if redis.call('EXISTS', S) == 0 then return 0 end
local now = clock()
redis.call('HSET', S, 'act', now)
if redis.call('HGET', S, 'ps') == 'AWAY' and not redis.call('HGET', S, 'man') then
  changed(now, tonumber(ARGV[2]))
  return 1
end
redis.call('HINCRBY', S, 'v', 1)
return 0`,
);

/** ARGV: userId, graceMs, recheckMs, manual ('' = none), keepMessage ('1' keeps), message ('' = none). */
export const SET_STATUS = perUser<number>(
  'presenceSetStatus',
  `
local now = clock()
if sweep(now) then schedule() end
if not present(now, tonumber(ARGV[2])) then return 0 end
if ARGV[4] == '' then redis.call('HDEL', S, 'man') else redis.call('HSET', S, 'man', ARGV[4]) end
if ARGV[5] ~= '1' then
  if ARGV[6] == '' then redis.call('HDEL', S, 'msg') else redis.call('HSET', S, 'msg', ARGV[6]) end
end
redis.call('HSET', S, 'act', now)
changed(now, tonumber(ARGV[3]))
return 1`,
);

/** ARGV: userId. Returns now, live count, then v ended act man msg dl pv seq (nil when absent). */
export const READ = perUser<ReadReply>(
  'presenceRead',
  `
local now = clock()
if sweep(now) then schedule() end
local f = redis.call('HMGET', S, 'v', 'ended', 'act', 'man', 'msg', 'dl', 'pv', 'seq')
return {now, redis.call('ZCARD', C), f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]}`,
);

/**
 * ARGV: userId, version, derivedAt, view JSON ('' = only reschedule), its status, deadline ('' =
 * none), retainOfflineMs. Returns {outcome, announced view JSON or nil, seq}.
 */
export const CLAIM = perUser<[outcome: 'stale' | 'unchanged' | 'published', published: string | null, seq: number]>(
  'presenceClaim',
  `
local v = num(redis.call('HGET', S, 'v')) or 0
local at = tonumber(ARGV[3])
if v ~= tonumber(ARGV[2]) or at < (num(redis.call('HGET', S, 'pt')) or 0) then
  return {'stale', redis.call('HGET', S, 'pv'), num(redis.call('HGET', S, 'seq')) or 0}
end
if redis.call('EXISTS', S) == 0 then
  schedule()
  return {'unchanged', false, 0}
end
local outcome = 'unchanged'
if ARGV[4] ~= '' and ARGV[4] ~= redis.call('HGET', S, 'pv') then
  local seq = (num(redis.call('HGET', S, 'seq')) or 0) + 1
  if at > seq then seq = at end
  redis.call('HSET', S, 'pv', ARGV[4], 'ps', ARGV[5], 'seq', seq, 'pt', at)
  outcome = 'published'
end
if outcome == 'published' and ARGV[5] == 'OFFLINE' then
  -- DND and the message hold only while connected; the record is kept a while for lastSeenAt.
  redis.call('HDEL', S, 'man', 'msg', 'dl')
  redis.call('PEXPIRE', S, ARGV[7])
elseif ARGV[6] == '' then
  redis.call('HDEL', S, 'dl')
else
  redis.call('HSET', S, 'dl', ARGV[6])
end
schedule()
return {outcome, redis.call('HGET', S, 'pv'), num(redis.call('HGET', S, 'seq')) or 0}`,
);

/**
 * KEYS[1] presence:{p<p>}:due, one partition. ARGV: limit, leaseMs. Due users, each leased for leaseMs.
 * Slot: one key.
 */
export const DUE = defineScript<string[]>({
  name: 'presenceDue',
  keys: 1,
  lua: `${LUA_NOW_MS}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id) end
return ids`,
});
