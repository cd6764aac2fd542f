/**
 * The fraud store with Redis: the shared windows while Redis answers, this instance's memory
 * windows while it is away (fail open with local windows: src/infra/redis-fallback.ts says why).
 * Only the guard's path falls back (observe, claim); decision counts are buffered and flushed by
 * the Redis store itself, and `decisions` (an admin read) needs the shared counts.
 */
import type { RedisFallback } from '../../infra/redis-fallback.js';
import type { FraudStateStore } from './fraud.store.js';

export function createFallbackFraudStore(deps: {
  shared: FraudStateStore;
  local: FraudStateStore;
  fallback: RedisFallback;
}): FraudStateStore {
  const { shared, local, fallback } = deps;
  return {
    observe: (observation) =>
      fallback.run(
        () => shared.observe(observation),
        () => local.observe(observation),
      ),
    claim: (key, ttlMs, at) =>
      fallback.run(
        () => shared.claim(key, ttlMs, at),
        () => local.claim(key, ttlMs, at),
      ),
    countDecision: (kind, scopeId, verdict) => shared.countDecision(kind, scopeId, verdict),
    decisions: (kind, scopeIds) => shared.decisions(kind, scopeIds),
    async close() {
      await Promise.all([shared.close(), local.close()]);
    },
  };
}
