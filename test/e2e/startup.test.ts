/**
 * Start-up failures as a person meets them with `npm start`: a busy PORT or a DATA_DIR that
 * another server holds stop the start at once, in one line naming the variable, before anything
 * is opened or answered. A holder killed with SIGKILL does not block the next start.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { CompetitionDocument } from '../generated/graphql.js';
import { dataOf, execute } from '../support/graphql.js';
import { freePort } from '../support/ports.js';
import { seedPGlite, startExpectingExit, startServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovation-startup-'));
  dirs.push(dir);
  return dir;
}

it('a busy PORT stops the start before the database is opened, in one line naming the port', async () => {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen({ port: 0, host: '127.0.0.1' }, resolve));
  const { port } = blocker.address() as net.AddressInfo;
  const dataDir = await tempDir();
  try {
    const result = await startExpectingExit({ PORT: String(port), DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toEqual([
      `PORT ${port} is already in use on 127.0.0.1: stop what holds it, or set PORT to a free port`,
    ]);
    expect(result.stdout).toBe('');
    expect(existsSync(path.join(dataDir, 'pglite'))).toBe(false); // no database opened, no migration run
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

it('a second server on the same DATA_DIR exits at once naming it and the holder; a SIGKILLed holder does not block the next start', async () => {
  const dataDir = await tempDir();
  await seedPGlite(dataDir); // the subject is the lock, not a first start
  const first = await startServerProcess({}, { dataDir });
  let next: Awaited<ReturnType<typeof startServerProcess>> | undefined;
  try {
    const secondPort = await freePort();
    const second = await startExpectingExit({ PORT: String(secondPort), DATA_DIR: dataDir });
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split('\n')).toEqual([
      `DATA_DIR ${dataDir} is in use by another Ovation process (PID ${first.pid}): stop it, or give this server another DATA_DIR (two servers on one embedded database lose writes)`,
    ]);

    // The first one still serves, writes included.
    const { competitionId } = await openCompetition(first.graphqlUrl, 1);

    // SIGKILL leaves the lock file behind; its holder is gone, so the next start takes it over.
    await first.stop('SIGKILL');
    expect(existsSync(path.join(dataDir, 'pglite.lock'))).toBe(true);
    next = await startServerProcess({}, { dataDir });
    const { competition } = dataOf(await execute(fetch, next.graphqlUrl, CompetitionDocument, { id: competitionId }));
    expect(competition).toMatchObject({ id: competitionId, status: 'OPEN', submissions: [{ title: 'S0' }] });
  } finally {
    await first.stop();
    await next?.stop();
  }
}, 120_000);
