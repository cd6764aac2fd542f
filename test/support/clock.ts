/**
 * A clock for an app under test (createApp's `now`, ModuleContext.now): real time plus an offset
 * the test moves forward, so "after the TTL" is one advance() instead of a sleep of the TTL, and
 * time still passes as usual between advances (nothing the app measures stands still).
 */
export interface TestClock {
  /** Epoch ms: Date.now() plus everything advanced so far. */
  now(): number;
  /** Moves the clock `ms` forward, at once. */
  advance(ms: number): void;
}

export function testClock(): TestClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance(ms) {
      if (!(ms >= 0)) throw new Error(`testClock: advance by a non-negative ms, got ${ms}`);
      offset += ms;
    },
  };
}
