/**
 * PORT checked before anything else starts: a busy port is found before the database is opened
 * (migrations, the embedded database's lock), and reported in one line that names it.
 */
import cluster from 'node:cluster';
import net from 'node:net';
import { StartupError } from '../config.js';

/** A listen() failure the operator fixes through PORT/HOST as a StartupError; others unchanged. */
export function listenError(error: unknown, port: number, host: string): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE') {
    return new StartupError(
      'PORT',
      `PORT ${port} is already in use on ${host}: stop what holds it, or set PORT to a free port`,
    );
  }
  if (code === 'EACCES')
    return new StartupError('PORT', `PORT ${port} on ${host} needs privileges this process lacks: set PORT above 1023`);
  if (code === 'EADDRNOTAVAIL') return new StartupError('HOST', `HOST ${host} is not an address of this machine`);
  return error;
}

/**
 * Binds PORT on HOST and lets it go again. Another process may still take it before the server
 * listens for real; that listen reports the same way (listenError).
 *
 * A cluster worker does not check: its primary did, once, before forking, and from the first
 * worker's listen on the primary holds the port for all of them (this exclusive probe would then
 * find it busy).
 */
export async function assertPortFree(port: number, host: string): Promise<void> {
  if (port === 0 || cluster.isWorker) return; // 0: any free port
  const probe = net.createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (error) => reject(listenError(error, port, host)));
    probe.listen({ port, host, exclusive: true }, resolve);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}
