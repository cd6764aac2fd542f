export interface BackoffOptions {
  /** The first retry waits this long ± 50 %. */
  initialDelayMs: number;
  /** No wait is longer than this (+ 50 % jitter). */
  maxDelayMs: number;
}

/**
 * Exponential backoff with jitter: attempt n waits initialDelayMs·2ⁿ (capped at maxDelayMs),
 * scaled by a random factor in [0.5, 1.5), so that clients cut off together come back spread out
 * rather than all at once.
 */
export function backoffDelay(
  attempt: number,
  { initialDelayMs, maxDelayMs }: BackoffOptions,
  random: () => number = Math.random,
): number {
  const base = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + random()));
}
