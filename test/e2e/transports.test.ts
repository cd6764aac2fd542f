/**
 * One real server process (the embedded default: PGlite, in-process pubsub) and real clients on
 * every transport: graphql-ws, graphql-sse single-connection, and plain SSE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CastVoteDocument, LeaderboardDocument, MeDocument, TallyUpdatedDocument } from '../generated/graphql.js';
import { subscribe, wsClient, type Transport } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

let server: ServerProcess;
beforeAll(async () => {
  server = await startServerProcess({ TALLY_FLUSH_MS: '50' });
});
afterAll(async () => {
  await server?.stop();
});

describe.each<Transport>(['graphql-ws', 'graphql-sse', 'sse'])('tallyUpdated over %s', (transport) => {
  it('sends the current standings, then live updates with increasing seq that end exact', async () => {
    const { competitionId, submissionIds } = await openCompetition(server.graphqlUrl, 2);
    const feed = subscribe(transport, server.url, TallyUpdatedDocument, { competitionId });
    try {
      const first = await feed.waitFor((r) => r.data?.tallyUpdated !== undefined);
      expect(first.data?.tallyUpdated).toMatchObject({ competitionId, totalVotes: 0 });
      expect(first.data?.tallyUpdated.entries.map((e) => e.votes)).toEqual([0, 0]);

      const voters = 12;
      await Promise.all(
        Array.from({ length: voters }, async (_, i) => {
          const token = await tokenFor({ sub: `${transport}-voter-${i}` });
          dataOf(
            await execute(
              fetch,
              server.graphqlUrl,
              CastVoteDocument,
              { input: { competitionId, submissionId: submissionIds[i % 2]! } },
              token,
            ),
          );
        }),
      );
      const last = await feed.waitFor((r) => r.data?.tallyUpdated.totalVotes === voters);
      const { leaderboard } = dataOf(await execute(fetch, server.graphqlUrl, LeaderboardDocument, { competitionId }));
      expect(last.data?.tallyUpdated.entries).toEqual(leaderboard);

      const seqs = feed.results.map((r) => r.data!.tallyUpdated.seq);
      for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
      expect(feed.results.every((r) => !r.errors)).toBe(true);
    } finally {
      await feed.close();
    }
  });

  it('answers NOT_FOUND for an unknown competition', async () => {
    const feed = subscribe(transport, server.url, TallyUpdatedDocument, { competitionId: 'missing' });
    try {
      const result = await feed.waitFor((r) => (r.errors?.length ?? 0) > 0);
      expect(result.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND');
    } finally {
      await feed.close();
    }
  });
});

describe('graphql-ws connection', () => {
  it('authenticates from connectionParams.authorization', async () => {
    const client = wsClient(server.wsUrl, await tokenFor({ sub: 'ws-user', name: 'Wes', role: 'FOUNDER' }));
    try {
      const result = await new Promise((resolve, reject) => {
        client.subscribe(
          { query: 'query { me { id name role } }' },
          { next: resolve, error: reject, complete: () => undefined },
        );
      });
      expect(result).toEqual({ data: { me: { id: 'ws-user', name: 'Wes', role: 'FOUNDER' } } });
    } finally {
      await client.dispose();
    }
  });

  it('closes with 4403 for an invalid token', async () => {
    const socket = new WebSocket(server.wsUrl, 'graphql-transport-ws');
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'Bearer nope' } }));
    const [code] = await new Promise<[number, string]>((resolve) =>
      socket.once('close', (c, r) => resolve([c, String(r)])),
    );
    expect(code).toBe(4403);
  });

  it('maps validation errors to BAD_USER_INPUT', async () => {
    const client = wsClient(server.wsUrl);
    try {
      const error = await new Promise((resolve) => {
        client.subscribe(
          { query: 'subscription { nope }' },
          { next: () => undefined, error: resolve, complete: () => undefined },
        );
      });
      expect(error).toMatchObject([{ extensions: { code: 'BAD_USER_INPUT' } }]);
    } finally {
      await client.dispose();
    }
  });
});

describe('HTTP endpoints', () => {
  it('serves /health and /ready', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await fetch(`${server.url}/ready`)).status).toBe(200);
  });

  it('serves GraphiQL with every asset inline (no CDN)', async () => {
    const response = await fetch(server.graphqlUrl, { headers: { accept: 'text/html' } });
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('<div id="root">');
    expect(html).not.toMatch(/<script[^>]+src="https?:\/\//);
    expect(html).not.toMatch(/<link[^>]+href="https?:\/\//);
  });

  it('answers queries with GET and POST', async () => {
    const token = await tokenFor({ sub: 'http-user', name: 'Hal' });
    const get = await fetch(`${server.graphqlUrl}?query=${encodeURIComponent('{ me { id } }')}`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    });
    expect(await get.json()).toEqual({ data: { me: { id: 'http-user' } } });
    expect(dataOf(await execute(fetch, server.graphqlUrl, MeDocument, {}, token)).me?.name).toBe('Hal');
  });
});
