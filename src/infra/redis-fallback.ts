/**
 * Local fallback for the guards' Redis state while Redis is away (issue 15, RELIABILITY.md).
 *
 * The policy: the rate limiter and the fraud checks fail OPEN with this instance's own in-memory
 * state, not closed. Why: their Redis state is protection, not truth. What must be exact lives in
 * PostgreSQL (a voter's one ballot, the idempotencyKey, budgets), so a vote admitted on local
 * limits cannot be counted twice or spend more than its budget; and failing closed would turn an
 * outage of a cache into an outage of voting for everyone. The cost is bounded: while Redis is
 * away each instance enforces the limits alone (at most instances × the limit per identity), and
 * the fraud windows see only this instance's actions (a ring spread over instances is seen in
 * part). Once Redis answers again the shared state is used again; what was counted locally meanwhile
 * is not carried over (the local windows expire on their own).
 *
 * "Away" is decided without waiting: the connection is not `ready` (ioredis would otherwise queue
 * the command until it reconnects, up to maxRetriesPerRequest × the retry delay, ~30 s, holding
 * the request), or a command on a connection that was ready does not answer within `timeoutMs`
 * (Redis died under it). Any other error (a script bug, a refused command) is thrown as before.
 */

export interface RedisFallback {
  /** `remote()` while Redis is ready and answers in time; otherwise `local()`. */
  run<T>(remote: () => Promise<T>, local: () => Promise<T> | T): Promise<T>;
  /** Whether the last call used the local state (diagnostics and tests). */
  readonly usingLocal: boolean;
}

export function createRedisFallback(deps: {
  redis: { readonly status: string };
  /** How long a command may take before this call uses the local state [1000 ms]. */
  timeoutMs?: number;
  /** Called when the local state starts (true) and stops (false) being used: log it once per outage. */
  onSwitch?: (local: boolean) => void;
}): RedisFallback {
  const timeoutMs = deps.timeoutMs ?? 1_000;
  let usingLocal = false;
  const use = (local: boolean): void => {
    if (local === usingLocal) return;
    usingLocal = local;
    deps.onSwitch?.(local);
  };
  const TIMED_OUT = Symbol('timed out');
  return {
    get usingLocal() {
      return usingLocal;
    },
    async run(remote, local) {
      if (deps.redis.status !== 'ready') {
        use(true);
        return local();
      }
      let timer: NodeJS.Timeout | undefined;
      const pending = remote();
      const result = await Promise.race([
        pending,
        new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(() => resolve(TIMED_OUT), timeoutMs))),
      ]).finally(() => clearTimeout(timer));
      if (result !== TIMED_OUT) {
        use(false);
        return result;
      }
      // The command may still land later: then it counted once more in Redis, never less.
      pending.catch(() => undefined);
      use(true);
      return local();
    },
  };
}
