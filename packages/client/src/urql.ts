/**
 * urql: subscriptions go through the Ovation client (reconnects, resume, fallbacks), everything
 * else to the next exchange (fetchExchange).
 *
 *   new Client({ url, exchanges: [cacheExchange, fetchExchange, ovationExchange(ovation)] })
 */
import {
  subscriptionExchange,
  type Exchange,
  type ExecutionResult,
  type Operation,
  type SubscriptionForwarder,
} from '@urql/core';
import type { OvationClient } from './client.js';

/** A `forwardSubscription` for urql's own `subscriptionExchange`. */
export function forwardToOvation(client: OvationClient): SubscriptionForwarder {
  return (_request, operation: Operation) => ({
    subscribe(observer) {
      const unsubscribe = client.subscribe(operation.query, operation.variables ?? {}, {
        next: (result) => observer.next(result as ExecutionResult),
        error: (error) => observer.error(error),
        complete: () => observer.complete(),
      });
      return { unsubscribe };
    },
  });
}

/** urql's subscriptionExchange over the Ovation client. */
export function ovationExchange(client: OvationClient): Exchange {
  return subscriptionExchange({ forwardSubscription: forwardToOvation(client) });
}
