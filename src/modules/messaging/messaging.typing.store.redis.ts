/**
 * TypingStore on Redis, shared by every instance. Keys (one hash tag, so one slot):
 * - `{typing}:expiries`: sorted set, member `<conversationId>\n<userId>`, score = expiry (epoch ms)
 *   of a running typing state. Being a member is being typing.
 * - `{typing}:started:<member>`: exists for `minStartIntervalMs` after a published start (rate limit).
 * - `{typing}:seq`: hash, field conversationId → the conversation's last change seq.
 *
 * Every operation is one Lua script (atomic, Redis server clock via TIME so instances with skewed
 * clocks agree). Expiry: every instance sweeps every `sweepIntervalMs`; the sweep script takes the
 * due members and ZREMs them in the same atomic step, so each expiry is claimed by exactly one
 * instance, which publishes its `isTyping: false`. An expiry is published between ttlMs and
 * ttlMs + sweepIntervalMs after the last refresh. Conversation ids are UUIDs (no newline), so
 * splitting a member at its first newline is unambiguous whatever the user id holds.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { TYPING_MIN_START_INTERVAL_MS, type TypingChange, type TypingStore } from './messaging.typing.store.js';

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: expiries, seq, started; ARGV: member, conversationId, ttlMs, minIntervalMs
// → {0, seq} started | {1, 0} refreshed | {2, retryAfterMs} throttled
const START = `${NOW}
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  return {1, 0}
end
local wait = redis.call('PTTL', KEYS[3])
if wait > 0 then return {2, wait} end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return {0, redis.call('HINCRBY', KEYS[2], ARGV[2], 1)}`;

// KEYS: expiries, seq; ARGV: member, conversationId → 0 (was not typing) | seq
const STOP = `if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[2], ARGV[2], 1)`;

// KEYS: expiries, seq; ARGV: batch → {member, seq, member, seq, ...} claimed by this call
const SWEEP = `${NOW}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
  local nl = string.find(member, '\\n', 1, true)
  out[#out + 1] = member
  out[#out + 1] = redis.call('HINCRBY', KEYS[2], string.sub(member, 1, nl - 1), 1)
end
return out`;

interface Script {
  source: string;
  sha: string;
}
const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const START_SCRIPT = script(START);
const STOP_SCRIPT = script(STOP);
const SWEEP_SCRIPT = script(SWEEP);
const SWEEP_BATCH = 200;

export function createRedisTypingStore(opts: {
  redis: Redis;
  ttlMs: number;
  minStartIntervalMs?: number;
  /** How often this instance looks for expired states; default ttlMs / 10 within 25..250 ms. */
  sweepIntervalMs?: number;
  /** Key prefix (tests isolate stores with it); default `{typing}`. */
  prefix?: string;
  onError?: (error: unknown) => void;
}): TypingStore {
  const { redis, ttlMs } = opts;
  const minInterval = opts.minStartIntervalMs ?? TYPING_MIN_START_INTERVAL_MS;
  const sweepIntervalMs = opts.sweepIntervalMs ?? Math.min(250, Math.max(25, Math.floor(ttlMs / 10)));
  const prefix = opts.prefix ?? '{typing}';
  const onError = opts.onError ?? (() => undefined);
  const expiriesKey = `${prefix}:expiries`;
  const seqKey = `${prefix}:seq`;
  const memberOf = (conversationId: string, userId: string): string => `${conversationId}\n${userId}`;

  async function run(s: Script, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(s.source, keys.length, ...keys, ...args);
    }
  }

  let handler: ((change: TypingChange) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;
  let closed = false;

  async function sweep(): Promise<void> {
    for (;;) {
      const reply = (await run(SWEEP_SCRIPT, [expiriesKey, seqKey], [SWEEP_BATCH])) as (string | number)[];
      for (let i = 0; i + 1 < reply.length; i += 2) {
        const member = String(reply[i]);
        const nl = member.indexOf('\n');
        const change: TypingChange = {
          conversationId: member.slice(0, nl),
          userId: member.slice(nl + 1),
          isTyping: false,
          seq: Number(reply[i + 1]),
        };
        try {
          handler?.(change);
        } catch (error) {
          onError(error);
        }
      }
      if (reply.length / 2 < SWEEP_BATCH || closed) return;
    }
  }

  function schedule(): void {
    if (closed) return;
    timer = setTimeout(() => {
      sweeping = sweep()
        .catch(onError)
        .finally(() => {
          sweeping = undefined;
          schedule();
        });
    }, sweepIntervalMs);
    timer.unref?.();
  }

  return {
    async start(conversationId, userId) {
      const member = memberOf(conversationId, userId);
      const [code, value] = (await run(START_SCRIPT, [expiriesKey, seqKey, `${prefix}:started:${member}`], [member, conversationId, ttlMs, minInterval])) as [
        number,
        number,
      ];
      if (code === 1) return { outcome: 'refreshed' };
      if (code === 2) return { outcome: 'throttled', retryAfterMs: Number(value) };
      return { outcome: 'started', change: { conversationId, userId, isTyping: true, seq: Number(value) } };
    },
    async stop(conversationId, userId) {
      const seq = Number(await run(STOP_SCRIPT, [expiriesKey, seqKey], [memberOf(conversationId, userId), conversationId]));
      return seq === 0 ? null : { conversationId, userId, isTyping: false, seq };
    },
    onExpired(h) {
      handler = h;
      if (timer === undefined && !closed) schedule();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await sweeping;
    },
  };
}
