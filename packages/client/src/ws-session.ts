/**
 * A graphql-ws session: one WebSocket, authenticated in connection_init, kept alive by pings
 * (a ping without a pong for keepAliveTimeoutMs ends it, so a silently dead network is noticed),
 * its token refreshed in band before it expires (a `ping` whose payload carries the new token;
 * the server's pong answers `{ refreshed: true }`). graphql-ws does not retry here: the client
 * decides what happens after a failure, for every transport alike.
 */
import { createClient, type Client } from 'graphql-ws';
import {
  ConnectionFailure,
  Lifecycle,
  executeThrough,
  quietTimer,
  type Operation,
  type OperationSink,
  type Session,
  type SessionContext,
} from './session.js';
import { refreshAtMs } from './token.js';
import type { Result } from './types.js';

interface SocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** `ws` in Node: drops the TCP connection without a closing handshake. */
  terminate?: () => void;
}

/** Close codes after which the server refused the credentials (graphql-ws 4403 Forbidden, 4401 Unauthorized). */
const AUTH_CLOSE_CODES = new Set([4401, 4403]);

export const wsUrlOf = (httpUrl: string): string => httpUrl.replace(/^http/, 'ws');

/** What a failed WebSocket says about the network: a refused upgrade (4xx) is a block, not an outage. */
function classify(code: number | undefined, reason: string | undefined, lastError: unknown): ConnectionFailure {
  if (code !== undefined && AUTH_CLOSE_CODES.has(code))
    return new ConnectionFailure('auth', `WebSocket closed ${code}: ${reason ?? ''}`);
  if (code === 4406) return new ConnectionFailure('blocked', `WebSocket closed ${code}: ${reason ?? ''}`);
  // Node's `ws` names the upgrade's status; a browser's WebSocket never does (then N failures decide).
  const message = (lastError as { message?: unknown } | undefined)?.message;
  const status = typeof message === 'string' ? /Unexpected server response: (\d{3})/.exec(message)?.[1] : undefined;
  if (status !== undefined && Number(status) >= 400 && Number(status) < 500) {
    return new ConnectionFailure('blocked', `WebSocket upgrade refused: HTTP ${status}`);
  }
  return new ConnectionFailure(
    'down',
    `WebSocket ${code === undefined ? 'failed' : `closed ${code}`}${reason ? `: ${reason}` : ''}${typeof message === 'string' ? ` (${message})` : ''}`,
  );
}

export async function openWsSession(ctx: SessionContext): Promise<Session> {
  let token = await ctx.getToken();
  /** A refreshed token sent in a ping, adopted once the pong confirms it. */
  let pendingToken: string | undefined;
  let socket: SocketLike | undefined;
  let lastError: unknown;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;

  const lifecycle = new Lifecycle(ctx, () => {
    clearTimeout(pongTimer);
    clearTimeout(refreshTimer);
    // Do not wait for a closing handshake a dead network will never answer.
    socket?.terminate?.();
    // dispose() rejects with the connection's failure when it never opened: that is reported already.
    Promise.resolve(client?.dispose()).catch(() => undefined);
  });

  function scheduleRefresh(): void {
    clearTimeout(refreshTimer);
    const at = token === undefined ? undefined : refreshAtMs(token, Date.now());
    if (at !== undefined) refreshTimer = quietTimer(() => void refresh(), Math.max(0, at - Date.now()));
  }

  async function refresh(): Promise<void> {
    const next = await ctx.getToken().catch(() => undefined);
    if (lifecycle.ended) return;
    if (next === undefined || next === token) {
      // No newer token yet: ask again shortly. At `exp` the server closes (4403) and the client reconnects.
      refreshTimer = quietTimer(() => void refresh(), 5_000);
      return;
    }
    // On the socket itself: graphql-ws only sends payload-less pings of its own.
    pendingToken = next;
    socket?.send(JSON.stringify({ type: 'ping', payload: { authorization: `Bearer ${next}` } }));
  }

  let client: Client | undefined;
  client = createClient({
    url: wsUrlOf(ctx.url),
    webSocketImpl: ctx.webSocketImpl,
    lazy: false,
    retryAttempts: 0,
    shouldRetry: () => false,
    keepAlive: ctx.timing.keepAliveMs,
    connectionParams: () => (token ? { authorization: `Bearer ${token}` } : {}),
    onNonLazyError: () => undefined, // reported through `closed`
    on: {
      connected: (s) => {
        socket = s as SocketLike;
        scheduleRefresh();
        lifecycle.open(session);
      },
      closed: (event) => {
        const { code, reason } = (event ?? {}) as { code?: number; reason?: string };
        lifecycle.end(classify(code, reason, lastError));
      },
      error: (error) => {
        lastError = error;
      },
      ping: (received) => {
        if (received || pongTimer !== undefined) return;
        const ms = ctx.timing.keepAliveTimeoutMs;
        pongTimer = quietTimer(() => lifecycle.end(new ConnectionFailure('down', `no pong within ${ms} ms`)), ms);
      },
      pong: (received, payload) => {
        if (!received) return;
        clearTimeout(pongTimer);
        pongTimer = undefined;
        if ((payload as { refreshed?: unknown } | undefined)?.refreshed === true && pendingToken !== undefined) {
          token = pendingToken;
          pendingToken = undefined;
          scheduleRefresh();
        }
      },
    },
  });

  const session: Session = {
    transport: 'ws',
    url: ctx.url,
    start(operation: Operation, sink: OperationSink) {
      let stopped = false;
      const unsubscribe = client.subscribe<Record<string, unknown>>(
        {
          query: operation.query,
          variables: operation.variables,
          ...(operation.operationName && { operationName: operation.operationName }),
        },
        {
          next: (result) => void (stopped || lifecycle.ended || sink.next(result as Result)),
          // After the session ended, graphql-ws completes what it disposed: not the server's doing.
          complete: () => void (stopped || lifecycle.ended || sink.complete()),
          error: (error) => {
            // An `error` message carries the operation's GraphQL errors; anything else is the socket
            // failing, which `closed` reports for the whole session.
            if (stopped || lifecycle.ended || !Array.isArray(error)) return;
            sink.next({ errors: error });
            sink.complete();
          },
        },
      );
      return () => {
        if (stopped) return;
        stopped = true;
        // Not from within this sink's own callbacks: graphql-ws counts the operation off twice when the
        // server's `complete` is in the same chunk as the `next` we stop on, and then closes the socket
        // (1000) while other operations still use it.
        setTimeout(unsubscribe, 0);
      };
    },
    execute: (query, variables, operationName) => executeThrough(session, lifecycle, query, variables, operationName),
    close: () => lifecycle.end(new ConnectionFailure('rotate', 'closed by the client'), false),
  };

  await lifecycle.opening();
  return session;
}
