/**
 * graphql-ws over a `ws` server, on graphql-ws's own transport API (`makeServer`: a socket is
 * `{ protocol, send, close, onMessage }`) instead of its `useServer` helper, because the helper
 * gives no place to look at a message before the protocol does and logs socket errors with
 * console.error. This adapter is the helper's ~60 lines with two differences:
 *
 * - Messages a client must never send (`connection_ack`, `next`, `error`: server-to-client only)
 *   pass graphql-ws's validation and then hit its `default: throw`, which closes with 4500 and
 *   prints a stack. They are the client's protocol error: 4400 Bad Request, before the protocol.
 * - Socket-level errors (a frame over `maxPayload`: ws closes 1009; invalid UTF-8: 1007; bad
 *   opcodes, unmasked frames: 1002) are the peer's fault and ws has already closed the socket:
 *   logged at debug.
 * Everything else keeps graphql-ws's codes: 4400 (not JSON / invalid message), 4401 (subscribe
 * before the ack), 4408 (no connection_init in time), 4409 (duplicate id), 4429 (second init).
 */
import type { IncomingMessage } from 'node:http';
import { CloseCode, handleProtocols, makeServer, MessageType, type ServerOptions } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../infra/logger.js';

/**
 * What every operation's context carries besides the app's own extra fields. Of the upgrade
 * request, only what operations read: keeping the IncomingMessage (its headers, raw header
 * strings and stream state) for the connection's life cost ~1 KB of heap per watcher.
 */
export interface SocketExtra {
  readonly socket: WebSocket;
  readonly peer: Peer;
}

/** The upgrade request's origin: the TCP peer and the X-Forwarded-For header it sent. */
export interface Peer {
  readonly address: string | undefined;
  readonly forwardedFor: string | undefined;
}

function peerOf(request: IncomingMessage): Peer {
  const header = request.headers['x-forwarded-for'];
  return {
    address: request.socket.remoteAddress,
    forwardedFor: Array.isArray(header) ? header[0] : header,
  };
}

const CLIENT_MESSAGES = new Set<string>([
  MessageType.ConnectionInit,
  MessageType.Ping,
  MessageType.Pong,
  MessageType.Subscribe,
  MessageType.Complete,
]);
/** The shape graphql-ws clients send (type first, or after the id): no parse needed for these. */
const USUAL_CLIENT_MESSAGE = /^\{(?:"id":"[^"\\]*",)?"type":"(?:subscribe|complete|ping|pong|connection_init)"[,}]/;

/** Whether a raw message is a JSON object whose string `type` a client may not send. Unparseable ones are graphql-ws's to refuse. */
export function isServerOnlyMessage(raw: string): boolean {
  // Cheap pre-check: the usual messages skip the parse (a duplicate "type" key later in such a
  // message would reach graphql-ws, which closes with 4500: the client's loss only).
  if (USUAL_CLIENT_MESSAGE.test(raw)) return false;
  let message: unknown;
  try {
    message = JSON.parse(raw);
  } catch {
    return false;
  }
  if (!message || typeof message !== 'object' || Array.isArray(message)) return false;
  const type = (message as Record<string, unknown>)['type'];
  return typeof type === 'string' && type !== '' && !CLIENT_MESSAGES.has(type);
}

/** Sockets pinged per loop turn by the keep-alive sweep. */
const PING_BATCH = 256;

const closeReason = (error: unknown, isProd: boolean): string =>
  isProd ? 'Internal server error' : (error instanceof Error ? error.message : String(error)).slice(0, 100);

export function serveGraphqlWs<
  P extends Record<PropertyKey, unknown> | undefined,
  E extends Record<PropertyKey, unknown>,
>(
  options: ServerOptions<P, SocketExtra & E>,
  wsServer: WebSocketServer,
  opts: { keepAliveMs: number; isProd: boolean; logger: Logger },
): { dispose(): Promise<void> } {
  const { keepAliveMs, isProd, logger } = opts;
  const server = makeServer(options);
  wsServer.options.handleProtocols = handleProtocols;

  // Keep-alive: a peer that has not answered the previous ping when the next one is due is gone
  // (so within 2 × keepAliveMs). One timer for every socket, as ws recommends, rather than an
  // interval, a timeout and a pong listener per socket: 10,000 sockets held ~30,000 timer objects.
  // The sweep yields every PING_BATCH sockets, so 10,000 pings never hold the loop in one turn.
  const awaitingPong = new WeakSet<WebSocket>();
  const onPong = function (this: WebSocket): void {
    awaitingPong.delete(this);
  };
  let sweeping = false;
  const sweep = async (): Promise<void> => {
    if (sweeping) return;
    sweeping = true;
    let count = 0;
    for (const socket of [...wsServer.clients]) {
      if (socket.readyState !== socket.OPEN) continue;
      if (awaitingPong.has(socket)) socket.terminate();
      else {
        awaitingPong.add(socket);
        socket.ping();
      }
      if (++count % PING_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    sweeping = false;
  };
  const keepAlive =
    keepAliveMs > 0 && Number.isFinite(keepAliveMs) ? setInterval(() => void sweep(), keepAliveMs) : undefined;
  keepAlive?.unref();

  wsServer.on('connection', (socket, request) => {
    socket.on('error', (error: Error & { code?: string }) => {
      logger.debug('websocket protocol error from a client', { error: error.message, code: error.code });
      // ws closes on its own protocol errors; anything else is closed as graphql-ws would.
      if (socket.readyState === socket.OPEN) socket.close(CloseCode.InternalServerError, closeReason(error, isProd));
    });
    socket.on('pong', onPong);

    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
            if (socket.readyState !== socket.OPEN) return;
            const text = Buffer.isBuffer(data)
              ? data.toString('utf8')
              : Array.isArray(data)
                ? Buffer.concat(data).toString('utf8')
                : Buffer.from(data).toString('utf8');
            if (isServerOnlyMessage(text)) {
              socket.close(CloseCode.BadRequest, 'Invalid message received');
              return;
            }
            handle(text).catch((error: unknown) => {
              logger.error('graphql-ws message handling failed', { error });
              socket.close(CloseCode.InternalServerError, closeReason(error, isProd));
            });
          }),
      },
      { socket, peer: peerOf(request) } as SocketExtra & E,
    );

    socket.once('close', (code, reason) => void closed(code, reason.toString()));
  });

  return {
    async dispose() {
      clearInterval(keepAlive);
      for (const client of wsServer.clients) client.close(1001, 'Going away');
      wsServer.removeAllListeners('connection');
      await new Promise<void>((resolve, reject) => wsServer.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
