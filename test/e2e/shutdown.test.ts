/**
 * SIGTERM: subscriptions end as dropped connections (graphql-ws 1001; an SSE response ends
 * without `complete`, so clients reconnect elsewhere with their cursors), acknowledged votes are
 * kept, and the process exits 0 well within 10 s. Then a restart on the same DATA_DIR (PGlite)
 * serves the same standings.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { print } from 'graphql';
import WebSocket from 'ws';
import { CastVoteDocument, LeaderboardDocument, TallyUpdatedDocument } from '../generated/graphql.js';
import { subscribe } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { seedPGlite, startServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

it('stops gracefully and keeps every acknowledged vote across a restart', async () => {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-shutdown-'));
  dirs.push(dataDir);
  await seedPGlite(dataDir); // the subject is the stop and the restart, not a first start
  const server = await startServerProcess({}, { dataDir });
  const { competitionId, submissionIds } = await openCompetition(server.graphqlUrl, 2);

  const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
  await new Promise((resolve) => socket.once('open', resolve));
  socket.send(JSON.stringify({ type: 'connection_init' }));
  await new Promise((resolve) => socket.once('message', resolve)); // connection_ack
  const wsClosed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
  const sse = subscribe('sse', server.url, TallyUpdatedDocument, { competitionId });
  await sse.waitFor((r) => r.data !== undefined);
  // The same stream read raw: what its last bytes are.
  const raw = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { accept: 'text/event-stream', 'content-type': 'application/json' },
    body: JSON.stringify({ query: print(TallyUpdatedDocument), variables: { competitionId } }),
  });
  const rawText = (async () => {
    let text = '';
    try {
      for await (const chunk of raw.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString();
    } catch {
      // an aborted response may also end with an error: the point is what arrived before
    }
    return text;
  })();

  // Votes in flight while the signal arrives: whatever was acknowledged must survive.
  const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => tokenFor({ sub: `shutdown-${i}` })));
  const inFlight = tokens.map((token, i) =>
    execute(
      fetch,
      server.graphqlUrl,
      CastVoteDocument,
      { input: { competitionId, submissionId: submissionIds[i % 2]! } },
      token,
    ).then(
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
  const text = await rawText;
  expect(text).toContain('event: next');
  expect(text).not.toContain('event: complete');

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
