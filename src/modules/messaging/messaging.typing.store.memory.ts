/**
 * In-process TypingStore (no REDIS_URL): one timer per (conversation, user) entry. The timer is
 * lazy: a refresh only moves `expiresAt`, and a timer that fires early re-arms itself. After the
 * state ends, the entry stays until the rate-limit interval of its last start has passed.
 */
import { TYPING_MIN_START_INTERVAL_MS, type TypingChange, type TypingStore } from './messaging.typing.store.js';

interface Entry {
  conversationId: string;
  userId: string;
  typing: boolean;
  expiresAt: number;
  lastStartAt: number;
  timer?: NodeJS.Timeout;
}

export function createMemoryTypingStore(opts: {
  ttlMs: number;
  minStartIntervalMs?: number;
  now?: () => number;
}): TypingStore {
  const { ttlMs } = opts;
  const minInterval = opts.minStartIntervalMs ?? TYPING_MIN_START_INTERVAL_MS;
  const now = opts.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const seqs = new Map<string, number>();
  let handler: ((change: TypingChange) => void) | undefined;
  let closed = false;

  const keyOf = (conversationId: string, userId: string): string => `${conversationId}\n${userId}`;
  const nextSeq = (conversationId: string): number => {
    const seq = (seqs.get(conversationId) ?? 0) + 1;
    seqs.set(conversationId, seq);
    return seq;
  };

  function arm(key: string, entry: Entry): void {
    clearTimeout(entry.timer);
    if (closed) return;
    const due = entry.typing ? entry.expiresAt : entry.lastStartAt + minInterval;
    entry.timer = setTimeout(() => fire(key, entry), Math.max(0, due - now()));
    entry.timer.unref?.();
  }

  function fire(key: string, entry: Entry): void {
    if (entries.get(key) !== entry || closed) return;
    const t = now();
    if (entry.typing) {
      if (t < entry.expiresAt) return arm(key, entry); // refreshed since the timer was set
      entry.typing = false;
      const change: TypingChange = {
        conversationId: entry.conversationId,
        userId: entry.userId,
        isTyping: false,
        seq: nextSeq(entry.conversationId),
      };
      arm(key, entry);
      handler?.(change);
      return;
    }
    if (t < entry.lastStartAt + minInterval) return arm(key, entry);
    entries.delete(key);
  }

  return {
    async start(conversationId, userId) {
      const key = keyOf(conversationId, userId);
      const t = now();
      let entry = entries.get(key);
      if (entry?.typing) {
        entry.expiresAt = t + ttlMs;
        return { outcome: 'refreshed' };
      }
      if (entry && t - entry.lastStartAt < minInterval) {
        return { outcome: 'throttled', retryAfterMs: entry.lastStartAt + minInterval - t };
      }
      if (!entry) {
        entry = { conversationId, userId, typing: true, expiresAt: t + ttlMs, lastStartAt: t };
        entries.set(key, entry);
      } else {
        Object.assign(entry, { typing: true, expiresAt: t + ttlMs, lastStartAt: t });
      }
      arm(key, entry);
      return { outcome: 'started', change: { conversationId, userId, isTyping: true, seq: nextSeq(conversationId) } };
    },
    async stop(conversationId, userId) {
      const key = keyOf(conversationId, userId);
      const entry = entries.get(key);
      if (!entry?.typing) return null;
      entry.typing = false;
      arm(key, entry);
      return { conversationId, userId, isTyping: false, seq: nextSeq(conversationId) };
    },
    onExpired(h) {
      handler = h;
    },
    async close() {
      closed = true;
      for (const entry of entries.values()) clearTimeout(entry.timer);
      entries.clear();
    },
  };
}
