/**
 * A graphql-sse session in single-connection mode (`<endpoint>/stream`): one event stream for
 * every operation, each operation a POST on it. It counts as open once a query made the round
 * trip through the stream (so a proxy that buffers event streams is found out at once), and the
 * same round trip every keepAliveMs tells a silently dead network. The token is sent with each
 * request of the connection; before it expires the session ends ('rotate') and the client opens
 * the next one with a new token (resumable subscriptions lose nothing on the way).
 */
import { createClient, NetworkError, type Client } from 'graphql-sse';
import {
  ConnectionFailure,
  Lifecycle,
  bearer,
  executeThrough,
  quietTimer,
  type Operation,
  type OperationSink,
  type Session,
  type SessionContext,
} from './session.js';
import { refreshAtMs } from './token.js';
import type { Result } from './types.js';

export const sseUrlOf = (httpUrl: string): string => `${httpUrl.replace(/\/+$/, '')}/stream`;

const PROBE = '{ __typename }';

function classify(error: unknown): ConnectionFailure {
  const message = (error as Error | undefined)?.message ?? String(error);
  if (error instanceof NetworkError) {
    const status = (error.response as { status?: number } | undefined)?.status;
    if (status !== undefined && status >= 400 && status < 500)
      return new ConnectionFailure('blocked', `event stream refused: ${message}`, { cause: error });
    return new ConnectionFailure('down', `event stream: ${message}`, { cause: error });
  }
  // No streaming body (React Native's fetch), an unparsable stream: this transport cannot work here.
  return new ConnectionFailure('blocked', `event stream unusable: ${message}`, { cause: error });
}

/** The GraphQL errors of a refused operation (the server answers 400/401/403 with them), if that is what it is. */
async function refusalOf(error: unknown): Promise<Result | undefined> {
  if (!(error instanceof NetworkError)) return undefined;
  const response = error.response as Response | undefined;
  if (!response || response.status >= 500) return undefined;
  try {
    const body = (await response.json()) as Result;
    return Array.isArray(body?.errors) ? { errors: body.errors } : undefined;
  } catch {
    return undefined;
  }
}

export async function openSseSession(ctx: SessionContext): Promise<Session> {
  const token = await ctx.getToken();
  let keepAliveTimer: ReturnType<typeof setTimeout> | undefined;
  let rotateTimer: ReturnType<typeof setTimeout> | undefined;
  let client: Client<true> | undefined;
  const lifecycle = new Lifecycle(ctx, () => {
    clearTimeout(keepAliveTimer);
    clearTimeout(rotateTimer);
    client?.dispose();
  });

  client = createClient({
    url: sseUrlOf(ctx.url),
    singleConnection: true,
    lazy: false,
    retryAttempts: 0,
    headers: () => bearer(token),
    fetchFn: ctx.fetch,
    onNonLazyError: (error) => lifecycle.end(classify(error)),
  });

  const session: Session = {
    transport: 'sse',
    url: ctx.url,
    start(operation: Operation, sink: OperationSink) {
      let stopped = false;
      const live = (): boolean => !stopped && !lifecycle.ended;
      const unsubscribe = client.subscribe<Record<string, unknown>>(
        {
          query: operation.query,
          variables: operation.variables,
          ...(operation.operationName && { operationName: operation.operationName }),
        },
        {
          next: (result) => void (live() && sink.next(result as Result)),
          complete: () => void (live() && sink.complete()),
          error: (error) => {
            if (!live()) return;
            void refusalOf(error).then((refusal) => {
              if (!live()) return;
              if (!refusal) return lifecycle.end(classify(error));
              sink.next(refusal);
              sink.complete();
            });
          },
        },
      );
      return () => {
        if (stopped) return;
        stopped = true;
        unsubscribe();
      };
    },
    execute: (query, variables, operationName) => executeThrough(session, lifecycle, query, variables, operationName),
    close: () => lifecycle.end(new ConnectionFailure('rotate', 'closed by the client'), false),
  };

  function keepAlive(): void {
    keepAliveTimer = quietTimer(() => {
      const timeout = quietTimer(
        () =>
          lifecycle.end(
            new ConnectionFailure(
              'down',
              `no answer through the event stream within ${ctx.timing.keepAliveTimeoutMs} ms`,
            ),
          ),
        ctx.timing.keepAliveTimeoutMs,
      );
      executeThrough(session, lifecycle, PROBE, {}).then(
        () => {
          clearTimeout(timeout);
          keepAlive();
        },
        () => clearTimeout(timeout),
      );
    }, ctx.timing.keepAliveMs);
  }

  const opening = lifecycle.opening();
  executeThrough(session, lifecycle, PROBE, {}).then(
    () => lifecycle.open(session),
    (failure: unknown) => lifecycle.end(failure instanceof ConnectionFailure ? failure : classify(failure)),
  );
  await opening;
  keepAlive();
  const at = token === undefined ? undefined : refreshAtMs(token, Date.now());
  if (at !== undefined) {
    rotateTimer = quietTimer(
      () => lifecycle.end(new ConnectionFailure('rotate', 'token refresh')),
      Math.max(0, at - Date.now()),
    );
  }
  return session;
}
