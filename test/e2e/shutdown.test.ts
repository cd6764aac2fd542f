/**
 * SIGTERM: subscriptions end (graphql-ws 1001, SSE stream completes), acknowledged votes are
 * kept, and the process exits 0 well within 10 s. Then a restart on the same DATA_DIR (PGlite)
 * serves the same standings.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CastVoteDocument, LeaderboardDocument, TallyUpdatedDocument } from '../generated/graphql.js';
import { subscribe } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { startServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

it('stops gracefully and keeps every acknowledged vote across a restart', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-shutdown-'));
  dirs.push(dataDir);
  const server = await startServerProcess({}, { dataDir });
  const { competitionId, submissionIds } = await openCompetition(server.graphqlUrl, 2);

  const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await new Promise((resolve) => socket.once('message', resolve)); // connection_ack
  const wsClosed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  const sse = subscribe('sse', server.url, TallyUpdatedDocument, { competitionId });
  await sse.waitFor((r) => r.data !== undefined);

  // Votes in flight while the signal arrives: whatever was acknowledged must survive.
  const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => tokenFor({ sub: `shutdown-${i}` })));
  const inFlight = tokens.map((token, i) =>
    execute(fetch, server.graphqlUrl, CastVoteDocument, { input: { competitionId, submissionId: submissionIds[i % 2]! } }, token).then(
      (r) => (r.data?.castVote ? 1 : 0),
      () => 0,
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  const exit = await server.stop('SIGTERM');
  const acknowledged = (await Promise.all(inFlight)).reduce((x: number, y) => x + y, 0);

  expect(exit.code).toBe(0);
  expect(exit.ms).toBeLessThan(10_000);
  expect(await wsClosed).toBe(1001);
  await sse.ended;

  const restarted = await startServerProcess({}, { dataDir });
  try {
    const { leaderboard } = dataOf(await execute(fetch, restarted.graphqlUrl, LeaderboardDocument, { competitionId }));
    expect(leaderboard.reduce((sum, e) => sum + e.votes, 0)).toBeGreaterThanOrEqual(acknowledged);
    // Nothing acknowledged is lost and nothing unacknowledged beyond what was sent appears.
    expect(leaderboard.reduce((sum, e) => sum + e.votes, 0)).toBeLessThanOrEqual(tokens.length);
  } finally {
    await restarted.stop();
  }
});
