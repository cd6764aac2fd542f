/**
 * Limits on subscriptions, for every transport (graphql-ws, both SSE modes): an envelop plugin on
 * `onSubscribe`, so it sees each subscriber before any execution is shared.
 * - rate: rule `subscriptions`, a token bucket per user of RATE_LIMIT_SUBSCRIPTIONS_BURST starts
 *   (default 2 × MAX_SUBSCRIPTIONS_PER_CONNECTION: a page opening all its subscriptions at once,
 *   and one reconnect of it) refilled at RATE_LIMIT_SUBSCRIPTIONS_PER_MINUTE, with the same
 *   escalation as every other rule. A user reconnecting in a loop and re-opening everything
 *   empties the bucket by its third round; the first refusal blocks it (1, 2, 4… min), so a
 *   reconnect loop gets the refill at most. Anonymous callers share their IP's bucket of
 *   RATE_LIMIT_SUBSCRIPTIONS_IP_BURST (default MAX_SUBSCRIPTIONS_PER_IP: all an IP may hold,
 *   re-opened at once), refilled × RATE_LIMIT_IP_FACTOR, and never blocked (rate-limit.ts): behind
 *   one IP is a venue, whose whole audience reconnects at once when an instance dies;
 * - concurrency: at most MAX_SUBSCRIPTIONS_PER_USER live subscriptions per user, and
 *   MAX_SUBSCRIPTIONS_PER_IP per IP for anonymous callers, across every connection, transport and
 *   instance; the slot is released when the subscription ends. This, not the bucket, is what
 *   bounds an address's memory on the server.
 * A refused subscription resolves to `{ data: null, errors: [RATE_LIMITED] }` with `retryAfterMs`:
 * graphql-ws sends it as `next` then `complete` and keeps the socket open; SSE sends it as one
 * event. If the store fails (Redis unreachable), subscriptions are let through and logged: reading
 * a live stream is not worth refusing for a limiter outage.
 */
import type { ExecutionResult, GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import { AppError } from '../errors.js';
import { toGraphQLError } from '../schema/errors.js';
import type { Caller } from './guards.js';
import { callerIdentity, rateLimited, SUBSCRIPTIONS_RULE, type RateLimiter } from './rate-limit.js';

export interface LiveSubscriptionCounter {
  /** Takes a slot if the identity holds fewer than `max` (on every instance together). */
  acquire(
    identity: string,
    max: number,
  ): Promise<{ admitted: true; current: number; release(): void } | { admitted: false; current: number }>;
  /** Live subscriptions of the identity (diagnostics and tests). */
  count(identity: string): Promise<number>;
  close(): Promise<void>;
}

/** When a refused-for-concurrency client may try again: a hint, as a slot frees when another subscription ends. */
export const CONCURRENCY_RETRY_AFTER_MS = 1_000;

export function useSubscriptionLimits(deps: {
  limiter: RateLimiter;
  live: LiveSubscriptionCounter;
  maxPerUser: number;
  /** Anonymous callers, per client IP. */
  maxPerIp: number;
  onError: (message: string, details: Record<string, unknown>) => void;
}): Plugin {
  const refuse = (error: AppError): ExecutionResult => ({ data: null, errors: [toGraphQLError(error)] });

  return {
    async onSubscribe({ args, setResultAndStopExecution }) {
      const caller = args.contextValue as Partial<Caller>;
      if (caller.clientIp === undefined) return; // not one of our contexts
      const who: Caller = {
        viewer: caller.viewer ?? null,
        clientIp: caller.clientIp,
        deviceId: caller.deviceId ?? null,
      };
      const identity = callerIdentity(who);
      let release: (() => void) | undefined;
      try {
        try {
          await deps.limiter.consume(SUBSCRIPTIONS_RULE, who);
        } catch (error) {
          if (error instanceof AppError) return setResultAndStopExecution(refuse(error));
          throw error;
        }
        const max = identity.anonymous ? deps.maxPerIp : deps.maxPerUser;
        const slot = await deps.live.acquire(identity.id, max);
        if (!slot.admitted) {
          return setResultAndStopExecution(
            refuse(
              rateLimited(`Too many live subscriptions: at most ${max} at once; end one first`, {
                retryAfterMs: CONCURRENCY_RETRY_AFTER_MS,
                rule: 'concurrentSubscriptions',
                limit: max,
                windowMs: 0,
              }),
            ),
          );
        }
        release = slot.release;
      } catch (error) {
        deps.onError('subscription limits unavailable; letting the subscription through', { error });
        return;
      }
      const done = release;
      return {
        onSubscribeResult({ result }) {
          if (!isAsyncIterable(result)) {
            done(); // refused later (NOT_FOUND, FORBIDDEN): it holds no slot
            return;
          }
          return { onEnd: done };
        },
      };
    },
  };
}

/**
 * graphql-ws: an operation beyond MAX_SUBSCRIPTIONS_PER_CONNECTION in flight on one connection.
 * Answered with the protocol's `error` message for that id; the socket stays open (closing would
 * end the client's other, legitimate operations; 4429 means a second connection_init).
 */
export function tooManyOperations(max: number): GraphQLError {
  return toGraphQLError(
    rateLimited(`Too many operations on this connection: at most ${max} at once; complete one first`, {
      retryAfterMs: CONCURRENCY_RETRY_AFTER_MS,
      rule: 'subscriptionsPerConnection',
      limit: max,
      windowMs: 0,
    }),
  );
}
