/**
 * TypingStore on Redis, shared by every instance. Keys (one hash tag, so one slot):
 * - `{typing}:expiries`: sorted set, member `<conversationId>\n<userId>`, score = expiry (epoch ms)
 *   of a running typing state. Being a member is being typing.
 * - `{typing}:started:<member>`: exists for `minStartIntervalMs` after a published start (rate limit).
 * - `{typing}:seq`: hash, field conversationId → the conversation's last change seq.
 *
 * Every operation is one Lua script (messaging.typing.lua.ts; atomic, Redis server clock via
 * TIME so instances with skewed clocks agree). Expiry: every instance sweeps every
 * `sweepIntervalMs`; the sweep script takes the due members and ZREMs them in the same atomic
 * step, so each expiry is claimed by exactly one instance, which publishes its `isTyping: false`. An expiry is published between ttlMs and
 * ttlMs + sweepIntervalMs after the last refresh. Conversation ids are UUIDs (no newline), so
 * splitting a member at its first newline is unambiguous whatever the user id holds.
 */
import type { RedisClient } from '../../infra/redis.js';
import { bindScripts } from '../../infra/redis-scripts.js';
import { START, STOP, SWEEP } from './messaging.typing.lua.js';
import { TYPING_MIN_START_INTERVAL_MS, type TypingChange, type TypingStore } from './messaging.typing.store.js';

const SWEEP_BATCH = 200;

export function createRedisTypingStore(opts: {
  redis: RedisClient;
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
  const scripts = bindScripts(redis, { START, STOP, SWEEP });

  let handler: ((change: TypingChange) => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> | undefined;
  let closed = false;

  async function sweep(): Promise<void> {
    for (;;) {
      const reply = await scripts.SWEEP([expiriesKey, seqKey], [SWEEP_BATCH]);
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
      const [code, value] = await scripts.START(
        [expiriesKey, seqKey, `${prefix}:started:${member}`],
        [member, conversationId, ttlMs, minInterval],
      );
      if (code === 1) return { outcome: 'refreshed' };
      if (code === 2) return { outcome: 'throttled', retryAfterMs: Number(value) };
      return { outcome: 'started', change: { conversationId, userId, isTyping: true, seq: Number(value) } };
    },
    async stop(conversationId, userId) {
      const seq = Number(await scripts.STOP([expiriesKey, seqKey], [memberOf(conversationId, userId), conversationId]));
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
