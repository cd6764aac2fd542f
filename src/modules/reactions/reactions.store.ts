/**
 * Per-window reaction aggregates shared by every instance (memory: one process; Redis: a
 * cluster). The one hard rule is exactness: `close` reads a window and shuts it in one atomic
 * step, and `add` refuses a closed window, so every accepted reaction is in exactly one
 * published window: the one it was added to, or (refused, then retried by the caller) a later one.
 */
import type { ReactionEntry, WindowAggregate } from './reactions.rules.js';

export interface ReactionStore {
  /**
   * Adds one reaction to window `window` of the session. false: the window is already closed
   * (published or being published) and nothing was added; the caller adds it to a later window.
   */
  add(sessionId: string, window: number, entry: ReactionEntry): Promise<boolean>;
  /**
   * Closes the window and returns what it holds (an empty aggregate when nothing was added).
   * Exactly one caller across every instance gets the aggregate; every later call gets null.
   */
  close(sessionId: string, window: number): Promise<WindowAggregate | null>;
}

/**
 * How long a window's aggregate and its closed mark are kept: long enough that no add can still
 * be on its way to it (adds target the current window, so they are late by milliseconds).
 */
export const retainMs = (windowMs: number): number => Math.max(60_000, windowMs * 20);
