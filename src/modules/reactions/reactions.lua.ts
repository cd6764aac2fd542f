/**
 * The reaction store's Redis scripts (src/infra/redis-scripts.ts runs them); a .ts module so that
 * tsc ships them in dist/. Each touches one window hash, `reactions:<sessionId>:<window>`, as
 * reactions.store.redis.ts describes it.
 */
import { defineScript } from '../../infra/redis-scripts.js';

/**
 * ADD: counts one reaction into its window unless the window is closed.
 * KEYS[1]  reactions:<sessionId>:<window>   HASH  t:<type>, i (intensity sum), c:<cell>, _closed
 * ARGV[1]  type field (t:<type>)   ARGV[2] intensity   ARGV[3] cell field (c:<index>, '' = none)
 * ARGV[4]  retention (ms)
 * Returns  1 counted | 0 the window is closed
 * Slot: one key.
 */
export const ADD = defineScript<0 | 1>({
  name: 'reactionsAdd',
  keys: 1,
  lua: `
if redis.call('HEXISTS', KEYS[1], '_closed') == 1 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[1], 'i', ARGV[2])
if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[3], 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`,
});

/**
 * CLOSE: closes a window and reads it in the same step; only the first caller succeeds.
 * KEYS[1]  reactions:<sessionId>:<window>   ARGV[1] retention (ms)
 * Returns  the window's hash, flat [field, value, ...] | null when it was closed already
 * Slot: one key.
 */
export const CLOSE = defineScript<string[] | null>({
  name: 'reactionsClose',
  keys: 1,
  lua: `
if redis.call('HSETNX', KEYS[1], '_closed', '1') == 0 then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])`,
});
