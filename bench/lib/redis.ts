/**
 * A throwaway redis-server for runs with --redis (Ovation's stores and pubsub on Redis, as a
 * multi-instance deployment runs them): its own temp dir and free loopback port, nothing kept on
 * disk, started in the foreground so the PID we hold is the server's (its CPU is accounted apart),
 * stopped by that PID. The binary is $REDIS_SERVER_BIN, else `redis-server` from PATH.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stopChild, trackChild } from './children.js';
import { freePort } from './targets.js';

export interface RunningRedis {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (c: Buffer) => done(c.toString().startsWith('+PONG')));
  });
}

export async function startRedis(opts: { log?: (s: string) => void; priority?: number } = {}): Promise<RunningRedis> {
  const bin = process.env['REDIS_SERVER_BIN'] ?? 'redis-server';
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ovation-bench-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
  ];
  const [cmd, cmdArgs] = opts.priority ? ['nice', ['-n', String(opts.priority), bin, ...args]] : [bin, args];
  const spawned = spawn(cmd, cmdArgs, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  if (spawned.pid === undefined) {
    // Not runnable at all (ENOENT, EACCES): the reason comes as an 'error' event.
    const reason = await new Promise<string>((resolve) => spawned.once('error', (e) => resolve(e.message)));
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot run ${bin} (${reason}); install redis-server or set REDIS_SERVER_BIN`);
  }
  const child = trackChild(spawned, 'redis');
  const { pid } = child;

  const stop = async (): Promise<void> => {
    await stopChild(child, 'SIGTERM', 5_000);
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 20_000;
  while (!(await ping(port))) {
    if (child.hasExited() || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server (${bin}) did not start on port ${port}:\n${child.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  opts.log?.(`redis ${pid} on 127.0.0.1:${port}`);
  return { url: `redis://127.0.0.1:${port}`, pid, stop };
}
