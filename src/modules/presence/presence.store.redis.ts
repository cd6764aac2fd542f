/**
 * PresenceStore on Redis, shared by every instance. Every step is one Lua script (EVALSHA), atomic
 * on the server, and reads the server's clock (TIME), so instances with skewed clocks agree on
 * expiry, grace and AWAY.
 *
 * KEYS (every script gets the same three, in this order)
 *   KEYS[1] presence:{<userId>}:c   ZSET  connectionId → expiresAt (ms). Live = score > now.
 *   KEYS[2] presence:{<userId>}:s   HASH  v       version, +1 on every change of a fact
 *                                         ended   when the live count last fell to 0 (ms)
 *                                         act     last activity (ms)
 *                                         man     hand-set status (AWAY | DND), absent = none
 *                                         msg     status message
 *                                         dl      deadline: next change by time alone, or a recheck
 *                                         pv      last announced view (JSON), ps its status
 *                                         seq     its seq; pt the instant it was derived at
 *   KEYS[3] presence:due            ZSET  userId → when a sweeper should reconcile the user:
 *                                         min(dl, first entry's expiry)
 * ARGV[1] is always the user id; the rest per script (see each one).
 *
 * The two per-user keys share a hash tag; `presence:due` is one key for the whole cluster of
 * instances (a schedule, not a pubsub topic), so the scripts assume a single Redis (not Cluster),
 * like the rest of Ovation. An OFFLINE user's hash expires after `retainOfflineMs`.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { offlineView, viewKey, type ManualStatus, type PresenceView } from './presence.state.js';
import {
  DEFAULT_RECHECK_MS,
  DEFAULT_RETAIN_OFFLINE_MS,
  type PresenceClaimResult,
  type PresenceRecord,
  type PresenceStore,
  type PresenceStoreOptions,
} from './presence.store.js';

const PRELUDE = `
local C, S, DUE = KEYS[1], KEYS[2], KEYS[3]
local UID = ARGV[1]
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
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

/** ARGV: userId, connectionId, ttlMs, graceMs, recheckMs. Returns 1 opened, 0 announce OFFLINE first. */
const OPEN = `${PRELUDE}
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
return 1`;

/** ARGV: userId, connectionId, recheckMs. Returns 1 removed, 0 not there. */
const CLOSE = `${PRELUDE}
local now = clock()
if sweep(now) then schedule() end
if redis.call('ZREM', C, ARGV[2]) == 0 then return 0 end
if redis.call('ZCARD', C) == 0 then redis.call('HSET', S, 'ended', now) end
changed(now, tonumber(ARGV[3]))
return 1`;

/** ARGV: userId, ttlMs, connectionId... Returns the connection ids that were not live. */
const HEARTBEAT = `${PRELUDE}
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
return missing`;

/** ARGV: userId, recheckMs. Returns 1 when an announced automatic AWAY may end. */
const ACTIVITY = `${PRELUDE}
if redis.call('EXISTS', S) == 0 then return 0 end
local now = clock()
redis.call('HSET', S, 'act', now)
if redis.call('HGET', S, 'ps') == 'AWAY' and not redis.call('HGET', S, 'man') then
  changed(now, tonumber(ARGV[2]))
  return 1
end
redis.call('HINCRBY', S, 'v', 1)
return 0`;

/** ARGV: userId, graceMs, recheckMs, manual ('' = none), keepMessage ('1' keeps), message ('' = none). */
const SET_STATUS = `${PRELUDE}
local now = clock()
if sweep(now) then schedule() end
if not present(now, tonumber(ARGV[2])) then return 0 end
if ARGV[4] == '' then redis.call('HDEL', S, 'man') else redis.call('HSET', S, 'man', ARGV[4]) end
if ARGV[5] ~= '1' then
  if ARGV[6] == '' then redis.call('HDEL', S, 'msg') else redis.call('HSET', S, 'msg', ARGV[6]) end
end
redis.call('HSET', S, 'act', now)
changed(now, tonumber(ARGV[3]))
return 1`;

/** ARGV: userId. Returns now, live count, then v ended act man msg dl pv seq (nil when absent). */
const READ = `${PRELUDE}
local now = clock()
if sweep(now) then schedule() end
local f = redis.call('HMGET', S, 'v', 'ended', 'act', 'man', 'msg', 'dl', 'pv', 'seq')
return {now, redis.call('ZCARD', C), f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8]}`;

/**
 * ARGV: userId, version, derivedAt, view JSON ('' = only reschedule), its status, deadline ('' =
 * none), retainOfflineMs. Returns {outcome, announced view JSON or nil, seq}.
 */
const CLAIM = `${PRELUDE}
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
return {outcome, redis.call('HGET', S, 'pv'), num(redis.call('HGET', S, 'seq')) or 0}`;

/** KEYS[1] presence:due. ARGV: limit, leaseMs. Due users, each leased for leaseMs. */
const DUE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id) end
return ids`;

interface Script {
  source: string;
  sha: string;
}
const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const SCRIPTS = {
  open: script(OPEN),
  close: script(CLOSE),
  heartbeat: script(HEARTBEAT),
  activity: script(ACTIVITY),
  setStatus: script(SET_STATUS),
  read: script(READ),
  claim: script(CLAIM),
  due: script(DUE),
};

export const DUE_KEY = 'presence:due';
export const presenceKeys = (userId: string): [string, string, string] => [`presence:{${userId}}:c`, `presence:{${userId}}:s`, DUE_KEY];

const MANUAL = new Set<string>(['AWAY', 'DND']);

type Reply = string | number | null;

export function createRedisPresenceStore(options: PresenceStoreOptions & { redis: Redis }): PresenceStore {
  const { redis, offlineGraceMs, recheckMs = DEFAULT_RECHECK_MS, retainOfflineMs = DEFAULT_RETAIN_OFFLINE_MS } = options;

  /** EVALSHA, loading the script once per server (after a restart or SCRIPT FLUSH too). */
  async function run(s: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(s.source, keys.length, ...keys, ...args);
    }
  }

  /** Many calls in one round trip; a NOSCRIPT (first use on this server) reloads and retries once. */
  async function runMany(s: Script, calls: readonly { keys: readonly string[]; args: readonly (string | number)[] }[]): Promise<unknown[]> {
    if (calls.length === 0) return [];
    if (calls.length === 1) return [await run(s, calls[0]!.keys, calls[0]!.args)];
    const exec = async () => {
      const pipeline = redis.pipeline();
      for (const call of calls) pipeline.evalsha(s.sha, call.keys.length, ...call.keys, ...call.args);
      return (await pipeline.exec()) ?? [];
    };
    let results = await exec();
    if (results.some(([error]) => error instanceof Error && error.message.startsWith('NOSCRIPT'))) {
      await redis.script('LOAD', s.source);
      results = await exec();
    }
    return results.map(([error, value]) => {
      if (error) throw error;
      return value;
    });
  }

  const int = (value: Reply | undefined): number | null => (value === null || value === undefined ? null : Number(value));

  function record(userId: string, reply: (Reply | undefined)[]): PresenceRecord {
    const [now, connections, version, ended, act, man, msg, dl, pv, seq] = reply;
    return {
      userId,
      now: Number(now),
      connections: Number(connections),
      version: int(version) ?? 0,
      endedAt: int(ended),
      lastActivityAt: int(act),
      manual: typeof man === 'string' && MANUAL.has(man) ? (man as ManualStatus) : null,
      statusMessage: typeof msg === 'string' ? msg : null,
      deadline: int(dl),
      published: typeof pv === 'string' ? (JSON.parse(pv) as PresenceView) : offlineView(userId),
      seq: int(seq) ?? 0,
    };
  }

  return {
    async open(userId, connectionId, ttlMs) {
      const opened = await run(SCRIPTS.open, presenceKeys(userId), [userId, connectionId, ttlMs, offlineGraceMs, recheckMs]);
      return opened === 1 ? 'opened' : 'announce-offline-first';
    },
    async close(userId, connectionId) {
      return (await run(SCRIPTS.close, presenceKeys(userId), [userId, connectionId, recheckMs])) === 1;
    },
    async heartbeat(entries, ttlMs) {
      const byUser = new Map<string, string[]>();
      for (const { userId, connectionId } of entries) {
        const ids = byUser.get(userId);
        if (ids) ids.push(connectionId);
        else byUser.set(userId, [connectionId]);
      }
      const replies = await runMany(
        SCRIPTS.heartbeat,
        [...byUser].map(([userId, ids]) => ({ keys: presenceKeys(userId), args: [userId, ttlMs, ...ids] })),
      );
      return replies.flatMap((reply) => (reply as string[]) ?? []);
    },
    async activity(userId) {
      return (await run(SCRIPTS.activity, presenceKeys(userId), [userId, recheckMs])) === 1;
    },
    async setStatus(userId, change) {
      const keep = change.statusMessage === undefined ? '1' : '0';
      const set = await run(SCRIPTS.setStatus, presenceKeys(userId), [
        userId,
        offlineGraceMs,
        recheckMs,
        change.manual ?? '',
        keep,
        change.statusMessage ?? '',
      ]);
      return set === 1;
    },
    async read(userIds) {
      const replies = await runMany(
        SCRIPTS.read,
        userIds.map((userId) => ({ keys: presenceKeys(userId), args: [userId] })),
      );
      return replies.map((reply, i) => record(userIds[i]!, reply as Reply[]));
    },
    async claim(claims) {
      const replies = await runMany(
        SCRIPTS.claim,
        claims.map((c) => ({
          keys: presenceKeys(c.userId),
          args: [
            c.userId,
            c.version,
            c.derivedAt,
            c.view === null ? '' : viewKey(c.view),
            c.view?.status ?? '',
            c.deadline === null ? '' : c.deadline,
            retainOfflineMs,
          ],
        })),
      );
      return replies.map((reply, i): PresenceClaimResult => {
        const [outcome, pv, seq] = reply as [PresenceClaimResult['outcome'], string | null, number];
        const userId = claims[i]!.userId;
        return { outcome, published: typeof pv === 'string' ? (JSON.parse(pv) as PresenceView) : offlineView(userId), seq: Number(seq) };
      });
    },
    async due(limit, leaseMs) {
      return (await run(SCRIPTS.due, [DUE_KEY], [limit, leaseMs])) as string[];
    },
  };
}
