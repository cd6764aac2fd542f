/**
 * Subscriptions do not outlive their token, against the real server process with real clients:
 * a graphql-ws connection is closed with 4403 at the token's expiry unless the client refreshed
 * it in-band (ping with a new token), and SSE streams (Yoga's distinct connections and
 * graphql-sse's single connection) end with a final UNAUTHENTICATED error at expiry.
 */
import { print } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TallyUpdatedDocument } from '../generated/graphql.js';
import { subscribe } from '../support/clients.js';
import { tokenFor } from '../support/graphql.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { openCompetition } from './support.js';

const nowSeconds = () => Math.floor(Date.now() / 1000);

interface Connection {
  client: Client;
  socket: Promise<WebSocket>;
  closed: Promise<{ code: number; reason: string; at: number }>;
  pongs: unknown[];
  results: unknown[];
}

/** A graphql-ws client subscribed to tallyUpdated that records pongs, results and how it closed. */
function connect(server: ServerProcess, token: string, competitionId: string): Connection {
  let closedResolve!: (c: { code: number; reason: string; at: number }) => void;
  let socketResolve!: (s: WebSocket) => void;
  const pongs: unknown[] = [];
  const results: unknown[] = [];
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: false,
    on: {
      connected: (socket) => socketResolve(socket as WebSocket),
      pong: (_received, payload) => void pongs.push(payload),
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        closedResolve({ code, reason: String(reason), at: Date.now() });
      },
    },
  });
  client.subscribe(
    { query: print(TallyUpdatedDocument), variables: { competitionId } },
    { next: (r) => void results.push(r), error: () => undefined, complete: () => undefined },
  );
  return {
    client,
    socket: new Promise((resolve) => (socketResolve = resolve)),
    closed: new Promise((resolve) => (closedResolve = resolve)),
    pongs,
    results,
  };
}

const refresh = (socket: WebSocket, token: string) =>
  socket.send(JSON.stringify({ type: 'ping', payload: { authorization: `Bearer ${token}` } }));

describe('token expiry on live connections', () => {
  let server: ServerProcess;
  let competitionId: string;

  beforeAll(async () => {
    server = await startServerProcess();
    ({ competitionId } = await openCompetition(server.graphqlUrl, 2));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('graphql-ws: the server closes the connection with 4403 "token expired" at the token’s exp', async () => {
    // Far enough ahead that a loaded CI machine has subscribed before the token expires.
    const exp = nowSeconds() + 4;
    const connection = connect(server, await tokenFor({ sub: 'ws-expiring' }, exp), competitionId);
    await expect.poll(() => connection.results.length, { timeout: 3_000 }).toBe(1); // the snapshot: live and subscribed
    const closed = await connection.closed;
    expect(closed).toMatchObject({ code: 4403, reason: 'token expired' });
    expect(closed.at).toBeGreaterThanOrEqual(exp * 1000 - 50);
    expect(closed.at).toBeLessThan(exp * 1000 + 1500);
    await connection.client.dispose();
  });

  it('graphql-ws: an in-band refresh (ping with a new token) keeps the connection open past the old exp', async () => {
    // Far enough ahead that a loaded CI machine has subscribed before the token expires.
    const exp = nowSeconds() + 4;
    const connection = connect(server, await tokenFor({ sub: 'ws-refreshing' }, exp), competitionId);
    const socket = await connection.socket;
    await expect.poll(() => connection.results.length, { timeout: 3_000 }).toBe(1);
    const longer = nowSeconds() + 600;
    refresh(socket, await tokenFor({ sub: 'ws-refreshing' }, longer));
    await expect.poll(() => connection.pongs.length, { timeout: 3_000 }).toBe(1);
    expect(connection.pongs[0]).toEqual({ refreshed: true, expiresAt: new Date(longer * 1000).toISOString() });

    const outcome = await Promise.race([
      connection.closed,
      new Promise((resolve) => setTimeout(() => resolve('open'), exp * 1000 + 1500 - Date.now())),
    ]);
    expect(outcome).toBe('open');
    expect(socket.readyState).toBe(WebSocket.OPEN);

    // A token for someone else is no refresh: the connection ends.
    refresh(socket, await tokenFor({ sub: 'someone-else' }, longer));
    expect(await connection.closed).toMatchObject({ code: 4403, reason: 'a refreshed token must have the same sub' });
    await connection.client.dispose();
  });

  it.each(['sse', 'graphql-sse'] as const)(
    '%s: the stream ends at the token’s exp with a final UNAUTHENTICATED error',
    async (transport) => {
      // Far enough ahead that a loaded CI machine has subscribed before the token expires.
      const exp = nowSeconds() + 4;
      const feed = subscribe(
        transport,
        server.url,
        TallyUpdatedDocument,
        { competitionId },
        await tokenFor({ sub: `${transport}-expiring` }, exp),
      );
      await feed.waitFor((r) => r.data?.tallyUpdated != null);
      await feed.ended;
      const endedAt = Date.now();
      expect(endedAt).toBeGreaterThanOrEqual(exp * 1000 - 50);
      expect(endedAt).toBeLessThan(exp * 1000 + 1500);
      expect(feed.results.at(-1)).toMatchObject({
        errors: [{ message: 'token expired', extensions: { code: 'UNAUTHENTICATED', retryable: false } }],
      });
      await feed.close();
    },
  );
});
