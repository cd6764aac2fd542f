/**
 * A loopback TCP proxy in front of a server process, for tests of what clients see when their
 * connection breaks: `cut()` resets every connection at once (a dropped network, both ends get an
 * abrupt close, no graceful WebSocket close or SSE `complete`), and `target` can be moved to
 * another instance, so that a client reconnecting to the same URL (a browser's EventSource) lands
 * on the instance that survived. Protocol-agnostic: HTTP, SSE and WebSocket pass through as bytes.
 */
import net from 'node:net';

export interface TcpProxy {
  url: string;
  port: number;
  /** The loopback port new connections are forwarded to. */
  target: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Resets every open connection (client side and upstream side). */
  cut(): void;
  close(): Promise<void>;
}

const reset = (socket: net.Socket): void => {
  // RST where the platform has it (Node ≥ 16.17): nothing of the stream's tail is delivered.
  if (typeof socket.resetAndDestroy === 'function' && !socket.destroyed && socket.readyState !== 'opening')
    socket.resetAndDestroy();
  else socket.destroy();
};

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let accepted = 0;
  const state = { target: targetPort };
  const server = net.createServer((client) => {
    accepted += 1;
    const upstream = net.connect({ host: '127.0.0.1', port: state.target });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const drop = (): void => {
      if (!pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    // Either end failing or closing ends both: the other side sees its connection drop.
    for (const socket of pair) {
      socket.on('error', drop);
      socket.on('close', drop);
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const cut = (): void => {
    for (const pair of [...pairs]) {
      pairs.delete(pair);
      pair.forEach(reset);
    }
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    get target() {
      return state.target;
    },
    set target(value: number) {
      state.target = value;
    },
    get accepted() {
      return accepted;
    },
    cut,
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
