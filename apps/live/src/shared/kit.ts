/**
 * One @ovation/client per page: graphql-ws, graphql-sse when WebSockets are blocked, polling when
 * no stream gets through; every subscription resumes after a drop. Its connection state feeds the
 * page's status line (useConnection).
 */
import { createOvationClient, type OvationClient, type StatusEvent } from '@ovation/client';
import { useSyncExternalStore } from 'react';

export interface Connection {
  state: StatusEvent['state'];
  transport?: StatusEvent['transport'];
}

let connection: Connection = { state: 'idle' };
const listeners = new Set<() => void>();

export function createKit(apiUrl: string, token: () => string | null): OvationClient {
  return createOvationClient({
    url: apiUrl,
    token,
    // A phone at a live event: come back within a few seconds rather than the default 10 s cap.
    retry: { maxDelayMs: 4000 },
    onStatus: (status) => {
      connection = { state: status.state, transport: status.transport };
      for (const listener of listeners) listener();
    },
  });
}

export function useConnection(): Connection {
  return useSyncExternalStore(
    (listener) => (listeners.add(listener), () => listeners.delete(listener)),
    () => connection,
  );
}

/** The result's error code, e.g. ALREADY_VOTED's CONFLICT, RATE_LIMITED, BUDGET_EXCEEDED. */
export function errorText(
  error:
    | { graphQLErrors?: readonly { message: string; extensions?: Record<string, unknown> }[]; message: string }
    | undefined
    | null,
): string | null {
  if (!error) return null;
  const first = error.graphQLErrors?.[0];
  if (!first) return error.message;
  const reason = first.extensions?.['reason'];
  return typeof reason === 'string' ? `${first.message} (${reason})` : first.message;
}
