/**
 * In-process rate-limit store and live-subscription counter (no Redis configured): the same
 * semantics as the Redis scripts (rate-limit.lua.ts), exact because each step is synchronous.
 * Sliding-log and token-bucket rules share the escalation (strikes, blocks).
 */
import {
  blockDurationMs,
  type Escalation,
  type RateDecision,
  type RateLimit,
  type RateLimitStore,
} from './rate-limit.js';
import type { LiveSubscriptionCounter } from './subscription-limits.js';
import { flat } from '../infra/strings.js';

interface Entry {
  /** Sliding-log rules: admission times, oldest first. */
  log: number[];
  /** Token-bucket rules: the bucket's debt (see takeFromBucket) at `debtAt` (ms). */
  debt: number;
  debtAt: number;
  strikes: number;
  strikesExpireAt: number;
  blockedUntil: number;
  /** When nothing in the entry matters any more. */
  idleAt: number;
}

export function createMemoryRateLimitStore(
  opts: { now?: () => number; sweepIntervalMs?: number } = {},
): RateLimitStore & { size(): number } {
  const now = opts.now ?? Date.now;
  const entries = new Map<string, Entry>();

  const sweep = (): void => {
    const t = now();
    for (const [key, entry] of entries) if (entry.idleAt <= t) entries.delete(key);
  };
  const timer = setInterval(sweep, opts.sweepIntervalMs ?? 30_000);
  timer.unref();

  function hit(key: string, limit: RateLimit, escalation: Escalation): RateDecision {
    const t = now();
    let entry = entries.get(key);
    if (!entry)
      entries.set(
        flat(key),
        (entry = { log: [], debt: 0, debtAt: 0, strikes: 0, strikesExpireAt: 0, blockedUntil: 0, idleAt: 0 }),
      );
    if (entry.strikesExpireAt <= t) entry.strikes = 0;
    if (entry.blockedUntil > t)
      return {
        admitted: false,
        remaining: 0,
        retryAfterMs: entry.blockedUntil - t,
        strikes: entry.strikes,
        struck: false,
      };
    const frees =
      limit.burst === undefined
        ? takeFromLog(entry, t, limit)
        : takeFromBucket(entry, t, { ...limit, burst: limit.burst });
    if (typeof frees !== 'number') return frees;

    entry.strikes += 1;
    entry.strikesExpireAt = t + escalation.strikeTtlMs;
    const block = blockDurationMs(entry.strikes, escalation);
    const retryAfterMs = Math.max(frees, block);
    if (block > 0) entry.blockedUntil = t + retryAfterMs;
    entry.idleAt = Math.max(entry.idleAt, entry.strikesExpireAt, entry.blockedUntil);
    return { admitted: false, remaining: 0, retryAfterMs, strikes: entry.strikes, struck: true };
  }

  /** The admission, or when the window frees a slot (ms from now). */
  function takeFromLog(entry: Entry, t: number, limit: RateLimit): RateDecision | number {
    // Keep calls inside (t - window, t], like ZREMRANGEBYSCORE -inf (t - window).
    let expired = 0;
    while (expired < entry.log.length && entry.log[expired]! <= t - limit.windowMs) expired += 1;
    if (expired > 0) entry.log.splice(0, expired);

    const count = entry.log.length;
    if (count < limit.max) {
      entry.log.push(t);
      entry.idleAt = Math.max(entry.idleAt, t + limit.windowMs);
      return { admitted: true, remaining: limit.max - count - 1, retryAfterMs: 0, strikes: 0 };
    }
    return Math.max(1, entry.log[count - limit.max]! + limit.windowMs - t);
  }

  /**
   * Step for step as BUCKET in rate-limit.lua.ts (which documents the arithmetic): the
   * admission, or when a token comes back (ms from now).
   */
  function takeFromBucket(entry: Entry, t: number, limit: RateLimit & { burst: number }): RateDecision | number {
    const capacity = limit.burst * limit.windowMs;
    const debt = Math.max(0, entry.debt - (t - entry.debtAt) * limit.max);
    if (debt + limit.windowMs <= capacity) {
      entry.debt = debt + limit.windowMs;
      entry.debtAt = t;
      entry.idleAt = Math.max(entry.idleAt, t + Math.ceil(entry.debt / limit.max));
      return {
        admitted: true,
        remaining: Math.floor((capacity - entry.debt) / limit.windowMs),
        retryAfterMs: 0,
        strikes: 0,
      };
    }
    return Math.ceil((debt + limit.windowMs - capacity) / limit.max);
  }

  return {
    hit: async (key, limit, escalation) => hit(key, limit, escalation),
    async close() {
      clearInterval(timer);
      entries.clear();
    },
    size: () => entries.size,
  };
}

export function createMemoryLiveSubscriptionCounter(): LiveSubscriptionCounter {
  const live = new Map<string, number>();
  return {
    async acquire(identity, max) {
      const current = live.get(identity) ?? 0;
      if (current >= max) return { admitted: false, current };
      live.set(identity, current + 1);
      let released = false;
      return {
        admitted: true,
        current: current + 1,
        release() {
          if (released) return;
          released = true;
          const next = (live.get(identity) ?? 1) - 1;
          if (next > 0) live.set(identity, next);
          else live.delete(identity);
        },
      };
    },
    count: async (identity) => live.get(identity) ?? 0,
    close: async () => live.clear(),
  };
}
