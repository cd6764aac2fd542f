/**
 * Typing state per (conversation, user), shared by every instance (memory: one process; Redis: a
 * cluster) and never written to Postgres.
 *
 * Semantics (both implementations):
 * - `start` while not typing sets the state with a TTL and reports a change to publish
 *   (`isTyping: true`); while typing it only extends the TTL (`refreshed`, nothing to publish).
 * - Rate limit: a user publishes at most one `isTyping: true` per `minStartIntervalMs` (1 s) in a
 *   conversation. A start sooner than that after the previous published start is `throttled`
 *   (state unchanged, nothing published); refreshes of a running state are never throttled. So a
 *   client toggling true/false in a loop produces at most two events per second per conversation.
 * - `stop` clears the state and reports `isTyping: false` to publish when the user was typing.
 * - A state not refreshed for `ttlMs` expires: the expiry handler receives its `isTyping: false`
 *   change exactly once across every store sharing the backend.
 * - Every change carries a `seq`, increasing per conversation in the order the store applied the
 *   changes: subscribers drop a change older than one already delivered for the same user (two
 *   instances' publishes can overtake each other on the way to a subscriber).
 */
export interface TypingChange {
  conversationId: string;
  userId: string;
  isTyping: boolean;
  seq: number;
}

export type TypingStartResult =
  | { outcome: 'started'; change: TypingChange }
  | { outcome: 'refreshed' }
  | { outcome: 'throttled'; retryAfterMs: number };

export interface TypingStore {
  start(conversationId: string, userId: string): Promise<TypingStartResult>;
  /** The `isTyping: false` change to publish when the user was typing; null otherwise. */
  stop(conversationId: string, userId: string): Promise<TypingChange | null>;
  /** Where expiries go (set once, by the messaging service); each is delivered exactly once. */
  onExpired(handler: (change: TypingChange) => void): void;
  /** Stops timers and sweeps. */
  close(): Promise<void>;
}

export const TYPING_MIN_START_INTERVAL_MS = 1_000;
