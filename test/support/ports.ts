import net from 'node:net';

/**
 * Asks the kernel for a TCP port that is free right now on `host` by binding port 0 and closing
 * the listener again. Another process may take the port before the caller binds it, so a caller
 * that starts a server on it must detect "address in use" and retry with a fresh port
 * (see {@link withFreePort}).
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err) => reject(new Error(`freePort: cannot bind ${host}:0: ${err.message}`, { cause: err })));
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`freePort: unexpected listener address ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** Thrown by a {@link withFreePort} callback to say "this port was taken, try another one". */
export class PortInUseError extends Error {
  constructor(
    readonly port: number,
    message = `port ${port} is already in use`,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PortInUseError';
  }
}

/**
 * Runs `start(port)` with a fresh free port, retrying with a new port (up to `attempts` times in
 * all) when it throws {@link PortInUseError}, i.e. when another process won the bind race. Any
 * other error is passed through at once.
 */
export async function withFreePort<T>(
  start: (port: number) => Promise<T>,
  {
    attempts = 5,
    host = '127.0.0.1',
    getPort = () => freePort(host),
  }: {
    attempts?: number;
    host?: string;
    getPort?: () => Promise<number>;
  } = {},
): Promise<T> {
  const tried: number[] = [];
  for (;;) {
    const port = await getPort();
    tried.push(port);
    try {
      return await start(port);
    } catch (err) {
      if (!(err instanceof PortInUseError) || tried.length >= attempts) {
        if (err instanceof PortInUseError) {
          throw new Error(
            `gave up after ${tried.length} attempts, every port was taken (${tried.join(', ')}): ${err.message}`,
            {
              cause: err,
            },
          );
        }
        throw err;
      }
    }
  }
}
