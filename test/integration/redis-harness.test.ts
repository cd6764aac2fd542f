import { existsSync } from 'node:fs';
import net from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../support/ports.js';
import { isAlive } from '../support/processes.js';
import { startRedis, type RedisServer } from '../support/redis.js';

/** Resolves with how a TCP connection attempt to 127.0.0.1:port ended. */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(2_000, () => {
      socket.destroy();
      resolve('timeout');
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('startRedis', () => {
  const started: RedisServer[] = [];
  const clients: Redis[] = [];
  const listeners: net.Server[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.quit().catch(() => c.disconnect())));
    await Promise.all(started.splice(0).map((s) => s.stop()));
    await Promise.all(listeners.splice(0).map((l) => new Promise<void>((r) => l.close(() => r()))));
  });

  it('starts a throwaway server that stores data, then stops it and frees its port', async () => {
    const redis = await startRedis();
    started.push(redis);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(existsSync(redis.dir)).toBe(true);
    expect(isAlive(redis.pid)).toBe(true);

    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    clients.push(client);
    expect(await client.set('ovation:greeting', 'hello')).toBe('OK');
    expect(await client.get('ovation:greeting')).toBe('hello');
    // Nothing is persisted, and the working directory is the private one.
    expect(await client.config('GET', 'save')).toEqual(['save', '']);
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
    expect(await client.config('GET', 'dir')).toEqual(['dir', redis.dir]);
    await client.quit();
    clients.pop();

    await redis.stop();
    expect(isAlive(redis.pid)).toBe(false);
    expect(existsSync(redis.dir)).toBe(false);
    expect(await tryConnect(redis.port)).toBe('ECONNREFUSED');
    // stop() is idempotent.
    await redis.stop();
  });

  it('gives concurrent servers distinct ports and distinct data', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    started.push(a, b);
    expect(a.port).not.toBe(b.port);
    expect(a.dir).not.toBe(b.dir);
    const ca = new Redis(a.url);
    const cb = new Redis(b.url);
    clients.push(ca, cb);
    await ca.set('k', 'a');
    expect(await cb.get('k')).toBeNull();
  });

  it('retries on a fresh port when the first one is taken (bind race)', async () => {
    // Occupy a port with a listener that accepts but never answers, and offer it first.
    // (resume() so that it sees the harness's probe hang up, and close() can finish.)
    const blocker = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.resume();
    });
    listeners.push(blocker);
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    if (address === null || typeof address === 'string') throw new Error('no blocker address');
    const taken = address.port;
    const offered: number[] = [];
    const redis = await startRedis({
      getPort: async () => {
        const port = offered.length === 0 ? taken : await freePort();
        offered.push(port);
        return port;
      },
    });
    started.push(redis);
    expect(offered.length).toBe(2);
    expect(offered[0]).toBe(taken);
    expect(redis.port).toBe(offered[1]);
    const client = new Redis(redis.url);
    clients.push(client);
    expect(await client.ping()).toBe('PONG');
  });

  it('does not mistake another redis-server already on the port for its own', async () => {
    const first = await startRedis();
    started.push(first);
    const offered: number[] = [];
    const second = await startRedis({
      getPort: async () => {
        const port = offered.length === 0 ? first.port : await freePort();
        offered.push(port);
        return port;
      },
    });
    started.push(second);
    expect(offered[0]).toBe(first.port);
    expect(second.port).not.toBe(first.port);
    expect(second.pid).not.toBe(first.pid);
    const client = new Redis(second.url);
    clients.push(client);
    const info = await client.info('server');
    expect(info).toContain(`process_id:${second.pid}`);
    expect(isAlive(first.pid)).toBe(true);
  });

  it('reports redis-server output when the server refuses to start', async () => {
    await expect(startRedis({ extraArgs: ['--no-such-directive', 'x'] })).rejects.toThrow(
      /exited during start-up with exit code 1[\s\S]*Bad directive/,
    );
  });

  it('says what to install when the binary is missing', async () => {
    await expect(startRedis({ bin: '/nonexistent/redis-server' })).rejects.toThrow(
      /ENOENT[\s\S]*apt-get install redis-server/,
    );
  });
});
