/**
 * The socket side: one Node HTTP server carrying the Yoga pipeline (HTTP, SSE in both modes) and
 * graphql-ws on its upgrade, and how they stop. Transports are adapters over that one pipeline:
 * they authenticate and hand the operation to Yoga, never to a service.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FanoutPacer } from '../realtime/fanout-pacer.js';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config.js';
import type { Services } from '../context.js';
import type { Authenticator } from '../guards/auth.js';
import type { Logger } from '../infra/logger.js';
import type { ConnectionRegistry } from '../realtime/connections.js';
import { listenError } from '../infra/port.js';
import type { Yoga } from './http.js';
import type { SseChannels } from './sse.js';
import { attachGraphqlWs } from './ws.js';

export interface Transports {
  /** Listens on config.port (0 = any free port); resolves with the bound URL. */
  listen(): Promise<{ url: string; port: number }>;
  /**
   * Stops accepting, ends every stream (graphql-ws 1001; SSE without `complete`, as a dropped
   * connection, so clients reconnect elsewhere with their cursors) and waits for requests in
   * flight, at most SHUTDOWN_TIMEOUT_MS.
   */
  drain(): Promise<void>;
}

/**
 * Connections the kernel may hold for us before we accept them. Node's default (511) is too few
 * for the minute after a pitch, when a room's phones connect at once: at 1,000 votes/s from new
 * clients the queue overflowed (4,086 dropped connection attempts in one 20 s run, BENCHMARKS.md),
 * and every dropped SYN costs its voter 1, 3, 7 or 15 s of TCP retransmission. The kernel caps it
 * at net.core.somaxconn (4096 on current Linux).
 */
const LISTEN_BACKLOG = 8_192;

export function createTransports(deps: {
  config: Config;
  yoga: Yoga;
  sseChannels: SseChannels;
  authenticator: Authenticator;
  logger: Logger;
  maskError: (error: unknown, message: string) => Error;
  ensureUser: Services['users']['ensureUser'];
  /** Ends every subscription on the bus (their streams are gone): called once the sockets are told. */
  closeSubscriptions: () => void;
  /** Where graphql-ws reports its sockets (the SSE transports report theirs from the Yoga pipeline). */
  connections: ConnectionRegistry;
  /** Told which requests are being answered and when clients connect, so fan-outs yield meanwhile. */
  pacer: Pick<FanoutPacer, 'requestStarted' | 'connectionAccepted'>;
}): Transports {
  const { config, yoga } = deps;
  const server: Server = createServer(yoga.requestListener);
  // Votes first (realtime/fanout-pacer.ts): a request counts until its response is done or the
  // client left. Event streams are connections, not requests waiting for an answer.
  server.on('connection', () => deps.pacer.connectionAccepted());
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (request.headers.accept?.includes('text/event-stream')) return;
    response.once('close', deps.pacer.requestStarted());
  });
  // Long-lived streams must not be cut by Node's default request timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 30_000;
  const ws = attachGraphqlWs({
    server,
    yoga,
    authenticator: deps.authenticator,
    logger: deps.logger,
    keepAliveMs: config.wsKeepAliveMs,
    isProd: config.nodeEnv === 'production',
    trustProxy: config.trustProxy,
    ensureUser: deps.ensureUser,
    maskError: deps.maskError,
    limits: {
      maxPayloadBytes: config.limits.wsMaxMessageBytes,
      connectionInitTimeoutMs: config.limits.wsConnectionInitTimeoutMs,
      maxOperationsPerConnection: config.maxSubscriptionsPerConnection,
      clientBufferBytes: config.subscriptionClientBufferBytes,
    },
    connections: deps.connections,
  });

  return {
    listen: () =>
      new Promise((resolve, reject) => {
        const failed = (error: unknown): void => reject(listenError(error, config.port, config.host));
        server.once('error', failed);
        server.listen({ port: config.port, host: config.host, backlog: LISTEN_BACKLOG }, () => {
          server.off('error', failed);
          const { port } = server.address() as AddressInfo;
          const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
          resolve({ url: `http://${host}:${port}`, port });
        });
      }),

    async drain() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections would outlive the drain (until the client's own idle timeout): every
      // response from now on closes its connection, and idle ones are closed as they become idle.
      server.on('request', (_request, response: ServerResponse) => response.setHeader('Connection', 'close'));
      server.closeIdleConnections();
      const idle = setInterval(() => server.closeIdleConnections(), 100);
      await ws.close(); // 1001 Going Away to every graphql-ws client
      deps.sseChannels.abortAll();
      deps.closeSubscriptions();
      const forced = setTimeout(() => server.closeAllConnections(), config.shutdownTimeoutMs);
      await closed;
      clearTimeout(forced);
      clearInterval(idle);
    },
  };
}
