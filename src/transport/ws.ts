/**
 * graphql-ws (subprotocol graphql-transport-ws) on the HTTP server's /graphql path. A thin
 * adapter: the connection is authenticated once from connectionParams.authorization, and every
 * operation runs through Yoga's `getEnveloped`, the same pipeline and context as HTTP and SSE.
 *
 * An operation may also carry its own token, as `Authorization` (any case) in its subscribe
 * message's `payload.extensions.headers`: that is where GraphiQL's WebSocket fetcher puts its
 * Headers tab (it sends nothing in connection_init). Such an operation runs as the token's user,
 * guarded like an SSE stream (streams.ts: it ends with a final UNAUTHENTICATED at the token's exp
 * or when the user's tokens are revoked; the socket stays open), and while a subscription of it
 * lives its user counts as connected (presence). A bad token is UNAUTHENTICATED for that
 * operation only. One socket is one user: the connection_init token's, else the first valid
 * operation token binds it; an operation with another user's token is FORBIDDEN (one socket must
 * not act for several users). Operations without a token run as the connection (anonymous, or
 * its connection_init user).
 *
 * A connection does not outlive its token: at the token's `exp` the server closes it with 4403
 * "token expired", and when the user's tokens are revoked (role change, disabled) with 4403 and
 * the reason (guardConnections in guards/streams.ts, observing the socket's entry in the connection
 * registry). In-band refresh: a `ping` message with payload `{ authorization: "Bearer <JWT>" }`
 * carrying a valid token for the same sub and role moves the deadline to the new token's `exp`
 * (later operations run with it); the pong answers `{ refreshed: true, expiresAt }`. A refresh
 * token that is invalid, for another sub or another role closes the connection with 4403.
 */
import type { Server } from 'node:http';
import { getOperationAST, type DocumentNode, type GraphQLError, type GraphQLSchema, type ExecutionArgs } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { AppError, forbidden, unauthenticated } from '../errors.js';
import type { Authenticator, Viewer } from '../guards/auth.js';
import { tooManyOperations } from '../guards/subscription-limits.js';
import { serveGraphqlWs } from './ws-server.js';
import type { Logger } from '../infra/logger.js';
import type { Connection, ConnectionRegistry } from '../realtime/connections.js';
import type { DirectSink, EncodedResult, WriteOutcome } from '../realtime/shared-subscriptions.js';
import { GRAPHQL_PATH, clientIpOf, deviceIdOf, type Yoga } from './http.js';

// graphql-ws's Extra must satisfy Record<PropertyKey, unknown>, which an interface does not.
// eslint-disable-next-line @typescript-eslint/consistent-type-definitions
type ConnectionExtra = {
  viewer?: Viewer | null;
  /** This socket in the connection registry. */
  connection?: Connection;
  /** The one user this socket may act as: the connection_init token's, else the first operation token's. */
  userId?: string;
  /**
   * The live subscriptions authenticated by their own token, as connections nested in the socket's,
   * by their subscribe payload (unique per message, unlike an id a client may reuse once
   * completed); each ends with its operation (onComplete) or the socket.
   */
  operations?: Map<unknown, Connection>;
};

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** An operation's own credentials: `extensions.headers.Authorization` (any case), as GraphiQL sends them; undefined: none. */
export function operationAuthorization(extensions: unknown): unknown {
  const headers = isRecord(extensions) ? extensions['headers'] : undefined;
  if (!isRecord(headers)) return undefined;
  const name = Object.keys(headers).find((key) => key.toLowerCase() === 'authorization');
  return name === undefined ? undefined : headers[name];
}

/** How graphql-ws clients learn why: 4403 Forbidden with a reason (at most 123 bytes). */
const close = (socket: WebSocket, reason: string): void => socket.close(CloseCode.Forbidden, reason.slice(0, 123));

/** The ping payload of an in-band refresh, or undefined for a plain ping. */
function refreshToken(payload: unknown): unknown {
  return payload && typeof payload === 'object' && 'authorization' in payload
    ? (payload as Record<string, unknown>)['authorization']
    : undefined;
}

const DIRECT_RETRY_MS = 50;

/**
 * Shared subscription results (src/realtime/shared-subscriptions.ts) are serialised once for all
 * subscribers; this writes that payload as operation `id`'s `next` message, the frame graphql-ws
 * would have built (it would stringify the whole message again per subscriber, and pass every
 * result through several async iterators first: 12% and ~10% of the CPU at 10k subscribers).
 */
function directSinkFor(socket: WebSocket, id: string, maxBufferedBytes: number): DirectSink {
  return new SocketSink(socket, Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`), maxBufferedBytes);
}

/** One per operation for its whole life: a class, so its methods are not closures per watcher. */
class SocketSink implements DirectSink {
  constructor(
    private readonly socket: WebSocket,
    private readonly prefix: Buffer,
    private readonly maxBufferedBytes: number,
  ) {}

  write(result: EncodedResult, retry: () => void): WriteOutcome {
    const socket = this.socket;
    if (socket.readyState !== socket.OPEN) return 'closed';
    if (socket.bufferedAmount > this.maxBufferedBytes) {
      this.retryWhenDrained(retry);
      return 'busy';
    }
    const prefix = this.prefix;
    const payload = result.json();
    const frame = Buffer.allocUnsafe(prefix.length + payload.length + 1);
    prefix.copy(frame, 0);
    payload.copy(frame, prefix.length);
    frame[frame.length - 1] = 0x7d; // }
    socket.send(frame, { binary: false });
    return 'sent';
  }

  private retryWhenDrained(retry: () => void): void {
    const check = (): void => {
      if (this.socket.readyState !== this.socket.OPEN) return;
      if (this.socket.bufferedAmount > this.maxBufferedBytes) setTimeout(check, DIRECT_RETRY_MS).unref();
      else retry();
    };
    setTimeout(check, DIRECT_RETRY_MS).unref();
  }
}

interface EnvelopedRoot {
  execute: (args: ExecutionArgs) => unknown;
  subscribe: (args: ExecutionArgs) => unknown;
}

export interface WsTransport {
  /** Closes every connection with 1001 (Going Away) and stops accepting new ones. */
  close(): Promise<void>;
}

export function attachGraphqlWs(deps: {
  server: Server;
  yoga: Yoga;
  authenticator: Authenticator;
  logger: Logger;
  keepAliveMs: number;
  isProd: boolean;
  trustProxy: boolean;
  ensureUser: (viewer: Viewer) => Promise<void>;
  /** Maps GraphQL request errors (syntax, validation) like the HTTP path does. */
  maskError: (error: unknown, message: string) => Error;
  /** Protocol limits (ws-server.ts; README "Limits"). */
  limits: {
    maxPayloadBytes: number;
    connectionInitTimeoutMs: number;
    maxOperationsPerConnection: number;
    /** SUBSCRIPTION_CLIENT_BUFFER_BYTES: unsent bytes above which this client's results wait (delivery.ts). */
    clientBufferBytes: number;
  };
  /**
   * Where every socket is reported (src/realtime/connections.ts), from its upgrade until it closes:
   * identified as its user at connection_init, before the ack (presence counts it, its token's
   * exp and revocation close it: 4403 with the reason); every subscription authenticated by its
   * own token is a connection nested in it, from before it starts until it ends.
   */
  connections: ConnectionRegistry;
}): WsTransport {
  const { yoga, authenticator, logger } = deps;
  // A message over maxPayload closes the socket with 1009 (Message Too Big) before it is buffered whole.
  const wsServer = new WebSocketServer({
    server: deps.server,
    path: GRAPHQL_PATH,
    maxPayload: deps.limits.maxPayloadBytes,
  });
  const socketConnections = new WeakMap<WebSocket, Connection>();
  wsServer.on('connection', (socket) => {
    const connection = deps.connections.open('ws', {
      backlog: () => socket.bufferedAmount,
      end: (reason) => close(socket, reason.message),
    });
    socketConnections.set(socket, connection);
    // Whatever closes it (client, keep-alive, 4403, 1001); its nested operations end with it.
    socket.once('close', () => connection.close());
  });

  const disposable = serveGraphqlWs<Record<string, unknown> | undefined, ConnectionExtra>(
    {
      connectionInitWaitTimeout: deps.limits.connectionInitTimeoutMs, // then 4408
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onConnect: async (ctx) => {
        let viewer: Viewer | null;
        try {
          viewer = await authenticator.authenticate(ctx.connectionParams?.['authorization']);
        } catch (error) {
          if (!(error instanceof AppError)) throw error;
          close(ctx.extra.socket, error.message); // 4403 with the reason ("token expired", "token revoked", …)
          return false;
        }
        ctx.extra.viewer = viewer;
        ctx.extra.operations = new Map<unknown, Connection>();
        const connection = (ctx.extra.connection = socketConnections.get(ctx.extra.socket));
        if (!viewer) return true;
        ctx.extra.userId = viewer.id;
        // The user row exists from the first connection, not only from the first operation.
        await deps.ensureUser(viewer);
        // Before the ack, so the client's first operation already counts it; a socket that closed
        // while it was authenticated has left the registry, and this does nothing. Never rejects;
        // bounded wait.
        await connection?.identify(viewer);
        return true;
      },
      onPing: async (ctx, payload) => {
        const authorization = refreshToken(payload);
        const current = ctx.extra.viewer;
        if (authorization === undefined || !ctx.acknowledged) return;
        try {
          const next = await authenticator.authenticate(authorization);
          if (!next) throw unauthenticated('refresh needs a token');
          if (next.id !== current?.id) throw unauthenticated('a refreshed token must have the same sub');
          if (next.role !== current.role)
            throw unauthenticated('a refreshed token must have the same role; reconnect instead');
          ctx.extra.viewer = next;
          ctx.extra.connection?.refresh(next);
          // graphql-ws answers with this same payload object: say what happened instead of echoing the token.
          const answer = payload!;
          delete answer['authorization'];
          answer['refreshed'] = true;
          answer['expiresAt'] = next.expiresAt === undefined ? null : new Date(next.expiresAt * 1000).toISOString();
        } catch (error) {
          if (!(error instanceof AppError)) throw error;
          close(ctx.extra.socket, error.message);
        }
      },
      onSubscribe: async (ctx, id, params) => {
        // graphql-ws reserves the id before this hook: the count includes this operation.
        const inFlight = Object.keys(ctx.subscriptions).length;
        if (inFlight > deps.limits.maxOperationsPerConnection)
          return [tooManyOperations(deps.limits.maxOperationsPerConnection)];
        const toErrors = (errors: readonly unknown[]): GraphQLError[] =>
          errors.map((e) => deps.maskError(e, 'Unexpected error.') as GraphQLError);
        let viewer = ctx.extra.viewer ?? null;
        let viewerFrom: 'connection' | 'operation' = 'connection';
        const authorization = operationAuthorization(params.extensions);
        if (authorization !== undefined) {
          let own: Viewer | null;
          try {
            own = await authenticator.authenticate(authorization);
          } catch (error) {
            return toErrors([error]); // UNAUTHENTICATED for this operation; a JWKS outage masked
          }
          if (own) {
            // Checked and bound in one step after the await: two operations racing to bind cannot both win.
            ctx.extra.userId ??= own.id;
            if (own.id !== ctx.extra.userId)
              return toErrors([
                forbidden('this connection acts for another user; open a new connection for this token'),
              ]);
            viewer = own;
            viewerFrom = 'operation';
          }
        }
        const enveloped = yoga.getEnveloped({
          ...ctx,
          socket: ctx.extra.socket,
          params,
          transport: 'graphql-ws',
          viewerFrom,
          viewer,
          clientIp: clientIpOf(ctx.extra.peer.address, ctx.extra.peer.forwardedFor, deps.trustProxy),
          deviceId: deviceIdOf(ctx.connectionParams?.['deviceId']),
          directSink: directSinkFor(ctx.extra.socket, id, deps.limits.clientBufferBytes),
          // Backpressure (src/realtime/delivery.ts): what this client has not taken yet.
          clientBacklog: () => ctx.extra.socket.bufferedAmount,
        });
        let document: DocumentNode;
        try {
          document = enveloped.parse(params.query) as DocumentNode;
        } catch (error) {
          return toErrors([error]);
        }
        const errors = enveloped.validate(enveloped.schema, document) as readonly GraphQLError[];
        if (errors.length > 0) return toErrors(errors);
        const { connection, operations } = ctx.extra;
        if (viewerFrom === 'operation' && viewer && connection && operations) {
          if (getOperationAST(document, params.operationName)?.operation === 'subscription') {
            // Counted before it starts (like a connection before its ack); ended by onComplete,
            // which graphql-ws calls however the operation ends, or by the socket's close.
            const nested = connection.nest(viewer);
            operations.set(params, nested);
            await nested.ready; // never rejects; bounded wait
          }
        }
        return {
          schema: enveloped.schema as GraphQLSchema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await enveloped.contextFactory(),
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
      },
      onComplete: (ctx, _id, params) => {
        const nested = ctx.extra.operations?.get(params);
        if (!nested) return;
        ctx.extra.operations?.delete(params);
        nested.close();
      },
    },
    wsServer,
    { keepAliveMs: deps.keepAliveMs, isProd: deps.isProd, logger },
  );

  wsServer.on('error', (error) => logger.error('websocket server error', { error }));

  return {
    async close() {
      await disposable.dispose();
    },
  };
}

export { CloseCode };
