/**
 * Apollo Client: subscriptions go through the Ovation client (reconnects, resume, fallbacks);
 * queries and mutations are forwarded to the next link:
 *
 *   link: ApolloLink.from([new OvationLink(ovation), new HttpLink({ uri })])
 */
import { ApolloLink } from '@apollo/client';
import { Observable, throwError } from 'rxjs';
import type { OvationClient } from './client.js';

export class OvationLink extends ApolloLink {
  constructor(private readonly client: OvationClient) {
    super();
  }

  override request(
    operation: ApolloLink.Operation,
    forward?: ApolloLink.ForwardFunction,
  ): Observable<ApolloLink.Result> {
    if (operation.operationType !== 'subscription') {
      return forward
        ? forward(operation)
        : throwError(
            () =>
              new Error(`OvationLink carries subscriptions only; put a link for ${operation.operationType}s after it`),
          );
    }
    return new Observable<ApolloLink.Result>((observer) =>
      this.client.subscribe(operation.query, operation.variables ?? {}, {
        next: (result) => observer.next(result as ApolloLink.Result),
        error: (error) => observer.error(error),
        complete: () => observer.complete(),
      }),
    );
  }
}
