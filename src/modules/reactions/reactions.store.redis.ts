/**
 * ReactionStore on Redis, shared by every instance. One hash per window,
 * `reactions:<sessionId>:<window>`, with a field per reaction type (`t:CLAP`), the intensity sum
 * (`i`), a field per non-empty heat map cell (`c:<flat index>`) and, once closed, `_closed`.
 *
 * Both operations are Lua scripts (reactions.lua.ts: one round trip each, atomic on the server):
 * - add: refuse if `_closed` is set, else HINCRBY type, intensity and cell, and refresh the TTL;
 * - close: HSETNX `_closed` (only the first caller across instances succeeds) and HGETALL in
 *   the same step, so no increment can land between "read" and "closed" and be lost.
 * Plain pipelined HINCRBYs plus a separate `SET NX` claim could not give that guarantee: an
 * increment arriving after the claimer's HGETALL would silently miss every burst.
 */
import type { RedisClient } from '../../infra/redis.js';
import { ReactionType } from '../../generated/prisma/enums.js';
import { bindScripts } from '../../infra/redis-scripts.js';
import { emptyAggregate, HEATMAP_CELLS, type WindowAggregate } from './reactions.rules.js';
import { ADD, CLOSE } from './reactions.lua.js';
import { retainMs, type ReactionStore } from './reactions.store.js';

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

export function createRedisReactionStore(opts: { redis: RedisClient; windowMs: number }): ReactionStore {
  const { redis } = opts;
  const ttl = String(retainMs(opts.windowMs));

  const scripts = bindScripts(redis, { ADD, CLOSE });

  return {
    async add(sessionId, window, entry) {
      const cell = entry.cell === null ? '' : `c:${entry.cell}`;
      const added = await scripts.ADD(
        [reactionWindowKey(sessionId, window)],
        [`t:${entry.type}`, entry.intensity, cell, ttl],
      );
      return added === 1;
    },
    async close(sessionId, window) {
      const reply = await scripts.CLOSE([reactionWindowKey(sessionId, window)], [ttl]);
      return Array.isArray(reply) ? parseWindowHash(reply) : null;
    },
  };
}
