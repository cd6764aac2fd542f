/**
 * The graphql-sse store's Redis scripts (src/infra/redis-scripts.ts runs them); a .ts module so
 * that tsc ships them in dist/. Each touches one reservation hash, `gsse:{<token>}`, as
 * graphql-sse.store.redis.ts describes it:
 *   owner            '' while reserved, then the instance id holding the stream
 *   n                how many operations were queued so far (their order)
 *   p:<operationId>  `<n>\n<PendingOperation JSON>` per operation queued before the stream connected
 * Slot: every script takes that one key.
 */
import { defineScript } from '../infra/redis-scripts.js';

/** Lua: what ENQUEUE and DEQUEUE answer for a reservation that is not (or no longer) waiting for its stream. */
const RESERVED_ONLY = `local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return {0} end
if owner ~= '' then return {2, owner} end`;

/**
 * CONNECT: a stream opens on an instance; the queued operations leave with the answer.
 * KEYS[1]  gsse:{<token>}   HASH (above)
 * ARGV[1]  the instance id taking the stream   ARGV[2] the entry's TTL from now (ms)
 * Returns  0 no such reservation | 1 connected already | the queued `p:` values (any order)
 */
export const CONNECT = defineScript<0 | 1 | string[]>({
  name: 'gsseConnect',
  keys: 1,
  lua: `
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
if owner ~= '' then return 1 end
local fields = redis.call('HGETALL', KEYS[1])
local pending = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'p:' then pending[#pending + 1] = fields[i + 1] end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'owner', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return pending`,
});

/**
 * ENQUEUE: an operation posted to a reservation whose stream has not connected yet.
 * KEYS[1]  gsse:{<token>}   HASH (above)
 * ARGV[1]  operation id   ARGV[2] its PendingOperation JSON   ARGV[3] how many may be queued
 * Returns  {0} no such reservation | {1} queued | {2, owner} connected meanwhile | {3} id queued already | {4} full
 */
export const ENQUEUE = defineScript<[0 | 1 | 3 | 4] | [2, string]>({
  name: 'gsseEnqueue',
  keys: 1,
  lua: `
${RESERVED_ONLY}
local field = 'p:' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], field) == 1 then return {3} end
if redis.call('HLEN', KEYS[1]) - 2 >= tonumber(ARGV[3]) then return {4} end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], field, n .. '\\n' .. ARGV[2])
return {1}`,
});

/**
 * DEQUEUE: DELETE of an operation queued on a reservation not connected yet.
 * KEYS[1]  gsse:{<token>}   HASH (above)
 * ARGV[1]  operation id
 * Returns  {0} no such reservation | {1} removed (or was not queued) | {2, owner} connected meanwhile
 */
export const DEQUEUE = defineScript<[0 | 1] | [2, string]>({
  name: 'gsseDequeue',
  keys: 1,
  lua: `
${RESERVED_ONLY}
redis.call('HDEL', KEYS[1], 'p:' .. ARGV[1])
return {1}`,
});
