/**
 * A small HTTP + WebSocket proxy between the kit and a server, to play the network: cut every
 * connection at once (what a client sees when a Wi-Fi drops or a load balancer restarts), stay
 * down, stall (connections open but silent), point at another instance, and refuse WebSocket
 * upgrades or event streams the way a corporate proxy does. HTTP requests are forwarded one
 * upstream connection each, upgrades are spliced as raw sockets; every socket is tracked, so a cut
 * is immediate on both sides.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';

export interface ProxyBlocks {
  /** WebSocket upgrades: 'refuse' answers 403 (what Node's ws reports), 'drop' closes before any answer (what a browser sees). */
  ws?: 'refuse' | 'drop';
  /** Event streams (graphql-sse's /graphql/stream and Accept: text/event-stream): answered 403. */
  sse?: boolean;
}

export interface Proxy {
  /** The GraphQL endpoint through the proxy. */
  readonly graphqlUrl: string;
  /** Points new connections at another server (`http://127.0.0.1:port`); open ones are not moved. */
  redirect(target: string): void;
  /** Destroys every open connection, both sides. New ones are accepted. */
  cut(): void;
  /** cut(), and new connections are closed at once until up(). */
  down(): void;
  /** Open connections stop forwarding (nothing is closed) and new ones hang, until up(). */
  stall(): void;
  up(): void;
  block(blocks: ProxyBlocks): void;
  /** Upgrades and event-stream requests that reached the upstream, by kind. */
  readonly forwarded: { ws: number; sse: number; http: number };
  close(): Promise<void>;
}

const isEventStream = (req: IncomingMessage): boolean =>
  (req.url ?? '').startsWith('/graphql/stream') || (req.headers.accept ?? '').includes('text/event-stream');

export async function startProxy(initialTarget: string): Promise<Proxy> {
  let target = new URL(initialTarget);
  let state: 'up' | 'down' | 'stall' = 'up';
  let blocks: ProxyBlocks = {};
  const sockets = new Set<Duplex>();
  /** Spliced pairs (upgrades), to stop forwarding when stalled. */
  const pipes = new Set<{ a: Duplex; b: Duplex }>();
  const forwarded = { ws: 0, sse: 0, http: 0 };

  const track = (socket: Duplex): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
  };

  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    if (state === 'down') return void req.socket.destroy();
    if (state === 'stall') return; // hangs
    if (blocks.sse && isEventStream(req)) {
      res.writeHead(403, { 'content-type': 'text/plain' }).end('event streams are not allowed here');
      return;
    }
    if (isEventStream(req)) forwarded.sse += 1;
    else forwarded.http += 1;
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
        agent: false,
      },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        res.flushHeaders();
        upstreamRes.pipe(res);
        upstreamRes.on('error', () => res.destroy());
      },
    );
    upstream.on('socket', track);
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (socket: net.Socket) => {
    if (state === 'down') return void socket.destroy();
    track(socket);
  });
  server.on('upgrade', (req: IncomingMessage, client: Duplex, head: Buffer) => {
    if (state === 'down') return void client.destroy();
    if (state === 'stall') return;
    if (blocks.ws === 'refuse')
      return void client.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    if (blocks.ws === 'drop') return void client.destroy();
    forwarded.ws += 1;
    const upstream = net.connect({ host: target.hostname, port: Number(target.port) });
    track(upstream);
    upstream.once('connect', () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      client.pipe(upstream);
      upstream.pipe(client);
      const pair = { a: client, b: upstream };
      pipes.add(pair);
      client.once('close', () => {
        pipes.delete(pair);
        upstream.destroy();
      });
      upstream.once('close', () => client.destroy());
    });
    upstream.once('error', () => client.destroy());
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  const cut = (): void => {
    for (const socket of [...sockets]) socket.destroy();
  };

  return {
    graphqlUrl: `http://127.0.0.1:${port}/graphql`,
    forwarded,
    redirect(next) {
      target = new URL(next);
    },
    cut,
    down() {
      state = 'down';
      cut();
    },
    stall() {
      state = 'stall';
      for (const { a, b } of pipes) {
        a.unpipe(b);
        b.unpipe(a);
        a.pause();
        b.pause();
      }
    },
    up() {
      if (state === 'stall') cut(); // stalled connections are dead to both ends by now
      state = 'up';
    },
    block(next) {
      blocks = next;
    },
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
