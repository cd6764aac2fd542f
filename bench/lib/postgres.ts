/**
 * A throwaway PostgreSQL 15 for the castVote-on-Postgres scenario: initdb in a temp dir owned by
 * the `postgres` OS user (the server refuses to run as root), started with setpriv so the PID we
 * hold is the postmaster itself, on a free loopback port. Stopped by PID (SIGINT = fast shutdown).
 * Default durability settings (fsync, synchronous_commit on) so commit costs are real.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stopChild, trackChild } from './children.js';
import { freePort } from './targets.js';

const PG_BIN = process.env['PG_BIN'] ?? '/usr/lib/postgresql/15/bin';

export interface RunningPostgres {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

function asPostgres(uid: number, gid: number, bin: string, args: string[]): { cmd: string; args: string[] } {
  if (process.getuid?.() !== 0) return { cmd: path.join(PG_BIN, bin), args };
  return {
    cmd: 'setpriv',
    args: [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', path.join(PG_BIN, bin), ...args],
  };
}

export async function startPostgres(
  opts: { settings?: Record<string, string>; log?: (s: string) => void; priority?: number } = {},
): Promise<RunningPostgres> {
  if (!existsSync(path.join(PG_BIN, 'postgres'))) throw new Error(`no PostgreSQL binaries in ${PG_BIN} (set PG_BIN)`);
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ovation-bench-pg-'));
  chownSync(dir, uid, gid);
  const data = path.join(dir, 'data');
  const init = asPostgres(uid, gid, 'initdb', [
    '-D',
    data,
    '-U',
    'postgres',
    '-A',
    'trust',
    '-E',
    'UTF8',
    '--no-sync',
    '--locale=C',
  ]);
  execFileSync(init.cmd, init.args, { stdio: 'pipe', cwd: dir });

  const port = await freePort();
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: dir,
    max_connections: '200',
    shared_buffers: '256MB',
    ...opts.settings,
  };
  const run = asPostgres(uid, gid, 'postgres', [
    '-D',
    data,
    ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
  ]);
  const [cmd, args] = opts.priority
    ? ['nice', ['-n', String(opts.priority), run.cmd, ...run.args]]
    : [run.cmd, run.args];
  const child = trackChild(spawn(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }), 'postgres');
  const { pid } = child;

  const stop = async (): Promise<void> => {
    await stopChild(child, 'SIGINT', 15_000); // SIGINT: PostgreSQL's fast shutdown
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.hasExited()) {
      await stop();
      throw new Error(`postgres exited during start-up:\n${child.output()}`);
    }
    try {
      execFileSync(path.join(PG_BIN, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q'], { stdio: 'ignore' });
      break;
    } catch {
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`postgres not ready within 30 s:\n${child.output()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  execFileSync(path.join(PG_BIN, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', 'ovation'], {
    stdio: 'pipe',
  });
  opts.log?.(`postgres ${pid} on 127.0.0.1:${port} (data ${data})`);
  return { url: `postgresql://postgres@127.0.0.1:${port}/ovation`, pid, stop };
}
