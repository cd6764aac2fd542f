/**
 * ReactionStore on Redis, shared by every instance. One hash per window,
 * `reactions:<sessionId>:<window>`, with a field per reaction type (`t:CLAP`), the intensity sum
 * (`i`), a field per non-empty heat map cell (`c:<flat index>`) and, once closed, `_closed`.
 *
 * Both operations are Lua scripts (EVALSHA: one round trip each, atomic on the server):
 * - add: refuse if `_closed` is set, else HINCRBY type, intensity and cell, and refresh the TTL;
 * - close: HSETNX `_closed` (only the first caller across instances succeeds) and HGETALL in
 *   the same step, so no increment can land between "read" and "closed" and be lost.
 * Plain pipelined HINCRBYs plus a separate `SET NX` claim could not give that guarantee: an
 * increment arriving after the claimer's HGETALL would silently miss every burst.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ReactionType } from '../../generated/prisma/enums.js';
import { emptyAggregate, HEATMAP_CELLS, type WindowAggregate } from './aggregate.js';
import { retainMs, type ReactionStore } from './reactions.store.js';

const ADD = `
if redis.call('HEXISTS', KEYS[1], '_closed') == 1 then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('HINCRBY', KEYS[1], 'i', ARGV[2])
if ARGV[3] ~= '' then redis.call('HINCRBY', KEYS[1], ARGV[3], 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`;

const CLOSE = `
if redis.call('HSETNX', KEYS[1], '_closed', '1') == 0 then return false end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return redis.call('HGETALL', KEYS[1])`;

interface Script {
  source: string;
  sha: string;
}
const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const ADD_SCRIPT = script(ADD);
const CLOSE_SCRIPT = script(CLOSE);

export const reactionWindowKey = (sessionId: string, window: number): string => `reactions:${sessionId}:${window}`;

/** HGETALL's flat [field, value, ...] reply as an aggregate (unknown fields are ignored). */
export function parseWindowHash(flat: readonly string[]): WindowAggregate {
  const aggregate = emptyAggregate();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = flat[i]!;
    const value = Number(flat[i + 1]);
    if (field === 'i') aggregate.intensity = value;
    else if (field.startsWith('t:')) {
      const type = field.slice(2);
      if (Object.hasOwn(ReactionType, type)) aggregate.counts[type as ReactionType] = value;
    } else if (field.startsWith('c:')) {
      const cell = Number(field.slice(2));
      if (Number.isInteger(cell) && cell >= 0 && cell < HEATMAP_CELLS) aggregate.cells[cell] = value;
    }
  }
  return aggregate;
}

export function createRedisReactionStore(opts: { redis: Redis; windowMs: number }): ReactionStore {
  const { redis } = opts;
  const ttl = String(retainMs(opts.windowMs));

  /** EVALSHA, loading the script once per server (after a restart or SCRIPT FLUSH too). */
  async function run(s: Script, key: string, args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(s.sha, 1, key, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(s.source, 1, key, ...args);
    }
  }

  return {
    async add(sessionId, window, entry) {
      const cell = entry.cell === null ? '' : `c:${entry.cell}`;
      const added = await run(ADD_SCRIPT, reactionWindowKey(sessionId, window), [`t:${entry.type}`, entry.intensity, cell, ttl]);
      return added === 1;
    },
    async close(sessionId, window) {
      const reply = await run(CLOSE_SCRIPT, reactionWindowKey(sessionId, window), [ttl]);
      return Array.isArray(reply) ? parseWindowHash(reply as string[]) : null;
    },
  };
}
