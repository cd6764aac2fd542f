/**
 * The rate-limit store with Redis: the shared Redis store while Redis answers, this instance's
 * memory store while it is away (fail open with local limits: src/infra/redis-fallback.ts says why).
 */
import type { RedisFallback } from '../infra/redis-fallback.js';
import type { RateLimitStore } from './rate-limit.js';

export function createFallbackRateLimitStore(deps: {
  shared: RateLimitStore;
  local: RateLimitStore;
  fallback: RedisFallback;
}): RateLimitStore {
  const { shared, local, fallback } = deps;
  return {
    hit: (key, limit, escalation) =>
      fallback.run(
        () => shared.hit(key, limit, escalation),
        () => local.hit(key, limit, escalation),
      ),
    async close() {
      await Promise.all([shared.close(), local.close()]);
    },
  };
}
