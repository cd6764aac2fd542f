/**
 * graphql-ws protocol limits that graphql-ws's `useServer` does not enforce by itself.
 *
 * - Messages a client must never send (`connection_ack`, `next`, `error`: server-to-client only)
 *   pass graphql-ws's message validation and then hit its `default: throw`, which closes with
 *   4500 Internal Server Error and prints a stack. They are the client's protocol error: close with
 *   4400 Bad Request like any other invalid message, before graphql-ws sees them.
 * - Socket-level errors (a frame over `maxPayload`: ws closes 1009; invalid UTF-8: 1007; bad
 *   opcodes, unmasked frames: 1002) are the peer's fault and ws has already closed the socket:
 *   log them at debug instead of graphql-ws's console.error.
 * Everything else keeps graphql-ws's own codes: 4400 (not JSON / invalid message), 4401
 * (subscribe before the ack), 4408 (no connection_init within WS_CONNECTION_INIT_TIMEOUT_MS),
 * 4409 (duplicate operation id), 4429 (second connection_init).
 *
 * Call after `useServer(…, wsServer)`: its 'connection' listener must have attached its handlers.
 */
import { CloseCode, MessageType } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../infra/logger.js';

const CLIENT_MESSAGES = new Set<string>([MessageType.ConnectionInit, MessageType.Ping, MessageType.Pong, MessageType.Subscribe, MessageType.Complete]);

/** Whether a raw message is a JSON object whose string `type` a client may not send. Unparseable ones are graphql-ws's to refuse. */
export function isServerOnlyMessage(raw: string): boolean {
  // Cheap pre-check: every client message names its type; skip the parse for the usual ones.
  if (!raw.includes('"type"')) return false;
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

type MessageListener = (this: WebSocket, data: unknown, isBinary: boolean) => void;

export function hardenGraphqlWs(wsServer: WebSocketServer, deps: { logger: Logger }): void {
  wsServer.on('connection', (socket: WebSocket) => {
    const errorListeners = socket.listeners('error');
    socket.removeAllListeners('error');
    socket.on('error', (error: Error & { code?: string }) => {
      deps.logger.debug('websocket protocol error from a client', { error: error.message, code: error.code });
      // ws closes on its own errors; anything else is closed the way graphql-ws would have.
      if (socket.readyState === socket.OPEN) for (const listener of errorListeners) (listener as (e: Error) => void).call(socket, error);
    });

    const messageListeners = socket.listeners('message') as MessageListener[];
    socket.removeAllListeners('message');
    socket.on('message', (data: unknown, isBinary: boolean) => {
      if (socket.readyState !== socket.OPEN) return;
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data as Buffer[]).toString('utf8') : String(data);
      if (isServerOnlyMessage(text)) {
        socket.close(CloseCode.BadRequest, 'Invalid message received');
        return;
      }
      for (const listener of messageListeners) listener.call(socket, data, isBinary);
    });
  });
}
