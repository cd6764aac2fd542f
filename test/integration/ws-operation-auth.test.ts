/**
 * graphql-ws operations authenticated by their own subscribe message: GraphiQL's WebSocket fetcher
 * sends its Headers tab as `payload.extensions.headers` of each subscribe, not in connection_init.
 * Such an operation runs as the token's user, and everything that holds for connection-level auth
 * holds for it: expiry and revocation end it (a final UNAUTHENTICATED, the socket stays open for
 * the rest), its user counts as connected while it lives (presence), a bad token is
 * UNAUTHENTICATED for that operation only. One socket never carries two users.
 */
import { print } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DisableUserDocument,
  EnableUserDocument,
  NotificationAddedDocument,
  PresenceDocument,
  SendNotificationDocument,
  WhoAmIDocument,
} from '../generated/graphql.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends } from '../support/backends.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { rawSocket, type RawSocket } from '../support/raw-ws.js';

type Message = Record<string, unknown>;
const nowSeconds = () => Math.floor(Date.now() / 1000);
const NOTIFICATION_ADDED = print(NotificationAddedDocument);
const WHO_AM_I = print(WhoAmIDocument);

describe.each(backends)('graphql-ws: auth in the subscribe message (GraphiQL) on $name', (backend) => {
  let infra: Awaited<ReturnType<typeof backend.start>>;
  let t: TestApp;
  let admin: string;
  const sockets: RawSocket[] = [];

  beforeAll(async () => {
    infra = await backend.start();
    t = await startTestApp({ ...infra.env, PRESENCE_OFFLINE_GRACE_MS: '0' });
    admin = await tokenFor({ sub: 'ws-op-admin', role: 'ADMIN' });
  });
  afterAll(async () => {
    for (const s of sockets) s.close();
    await t?.stop();
    await infra?.stop();
  });

  /** An acknowledged socket; `token` goes into connection_init (none: anonymous, as GraphiQL connects). */
  async function open(token?: string): Promise<RawSocket> {
    const ws = rawSocket(t.wsUrl);
    sockets.push(ws);
    ws.send(JSON.stringify({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} }));
    await ws.next((m) => m['type'] === 'connection_ack');
    return ws;
  }
  const send = (ws: RawSocket, id: string, query: string, headers?: Record<string, string>) =>
    ws.send(JSON.stringify({ type: 'subscribe', id, payload: { query, ...(headers && { extensions: { headers } }) } }));
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  const notify = async (userId: string, title: string) =>
    dataOf(
      await execute(fetch, t.graphqlUrl, SendNotificationDocument, { input: { userId, type: 'test', title } }, admin),
    );
  const titleOf = (m: Message) =>
    (m['payload'] as { data?: { notificationAdded?: { title: string } } }).data?.notificationAdded?.title;
  const errorOf = (m: Message) => {
    const payload = m['payload'] as
      | { errors?: { message: string; extensions?: Record<string, unknown> }[] }
      | { message: string; extensions?: Record<string, unknown> }[];
    return Array.isArray(payload) ? payload[0] : payload.errors?.[0];
  };
  const meOf = (m: Message) => (m['payload'] as { data?: { me: { id: string } | null } }).data?.me;
  /** Still open and serving: a ping is answered. */
  const alive = async (ws: RawSocket) => {
    ws.send(JSON.stringify({ type: 'ping' }));
    await ws.next((m) => m['type'] === 'pong');
  };
  async function connections(userId: string): Promise<number> {
    return dataOf(await execute(fetch, t.graphqlUrl, PresenceDocument, { userIds: [userId] })).presence[0]!.connections;
  }

  it('runs the operation as the token’s user: a notification sent to that user arrives (GraphiQL’s Headers tab)', async () => {
    const ws = await open();
    send(ws, 'me', WHO_AM_I, bearer(await tokenFor({ sub: 'gi-alice' })));
    expect(meOf(await ws.next((m) => m['id'] === 'me'))).toMatchObject({ id: 'gi-alice' });
    send(ws, 'feed', NOTIFICATION_ADDED, bearer(await tokenFor({ sub: 'gi-alice' })));
    // The subscription is live once its user counts as connected (registered before it starts).
    await expect.poll(() => connections('gi-alice')).toBe(1);
    await notify('gi-alice', 'hello alice');
    expect(titleOf(await ws.next((m) => m['id'] === 'feed'))).toBe('hello alice');
  });

  it('reads the header name case-insensitively; an operation without one runs as the connection', async () => {
    const ws = await open();
    send(ws, 'lower', WHO_AM_I, { authorization: `Bearer ${await tokenFor({ sub: 'gi-lower' })}` });
    expect(meOf(await ws.next((m) => m['id'] === 'lower'))).toMatchObject({ id: 'gi-lower' });
    send(ws, 'none', WHO_AM_I);
    expect(meOf(await ws.next((m) => m['id'] === 'none'))).toBeNull();
  });

  it('a bad token is UNAUTHENTICATED for that operation only; the socket stays open', async () => {
    const ws = await open();
    const expired = await tokenFor({ sub: 'gi-bad' }, nowSeconds() - 60);
    for (const [id, authorization] of [
      ['garbage', 'Bearer not-a-jwt'],
      ['expired', `Bearer ${expired}`],
      ['scheme', 'Basic Zm9vOmJhcg=='],
    ] as const) {
      send(ws, id, NOTIFICATION_ADDED, { Authorization: authorization });
      const refused = await ws.next((m) => m['id'] === id);
      expect(refused['type']).toBe('error');
      expect(errorOf(refused)?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', retryable: false });
    }
    await alive(ws);
  });

  it('one socket, one user: a second user’s token is FORBIDDEN, on anonymous and signed-in connections alike', async () => {
    const anonymous = await open();
    send(anonymous, 'a', WHO_AM_I, bearer(await tokenFor({ sub: 'gi-first' })));
    expect(meOf(await anonymous.next((m) => m['id'] === 'a'))).toMatchObject({ id: 'gi-first' });
    send(anonymous, 'b', WHO_AM_I, bearer(await tokenFor({ sub: 'gi-second' })));
    const refused = await anonymous.next((m) => m['id'] === 'b');
    expect(refused['type']).toBe('error');
    expect(errorOf(refused)).toMatchObject({ extensions: { code: 'FORBIDDEN', retryable: false } });
    expect(errorOf(refused)?.message).toMatch(/another user/);
    // The first user's other tokens are fine; anonymous operations too.
    send(anonymous, 'c', WHO_AM_I, bearer(await tokenFor({ sub: 'gi-first', role: 'JUDGE' })));
    expect(meOf(await anonymous.next((m) => m['id'] === 'c'))).toMatchObject({ id: 'gi-first' });
    send(anonymous, 'd', WHO_AM_I);
    expect(meOf(await anonymous.next((m) => m['id'] === 'd'))).toBeNull();

    const signedIn = await open(await tokenFor({ sub: 'gi-owner' }));
    send(signedIn, 'x', WHO_AM_I, bearer(await tokenFor({ sub: 'gi-intruder', role: 'ADMIN' })));
    expect(errorOf(await signedIn.next((m) => m['id'] === 'x'))?.extensions).toMatchObject({ code: 'FORBIDDEN' });
    send(signedIn, 'y', WHO_AM_I);
    expect(meOf(await signedIn.next((m) => m['id'] === 'y'))).toMatchObject({ id: 'gi-owner' });
  });

  it('expiry ends the operation at the token’s exp with UNAUTHENTICATED "token expired"; the socket stays open', async () => {
    const ws = await open();
    // Far enough ahead that a loaded machine has subscribed before the token expires.
    const exp = nowSeconds() + 4;
    send(ws, 'feed', NOTIFICATION_ADDED, bearer(await tokenFor({ sub: 'gi-expiring' }, exp)));
    await expect.poll(() => connections('gi-expiring')).toBe(1);
    const last = await ws.next((m) => m['id'] === 'feed', 10_000);
    const endedAt = Date.now();
    expect(errorOf(last)).toMatchObject({
      message: 'token expired',
      extensions: { code: 'UNAUTHENTICATED', retryable: false },
    });
    expect(endedAt).toBeGreaterThanOrEqual(exp * 1000 - 50);
    expect(endedAt).toBeLessThan(exp * 1000 + 1500);
    expect(await ws.next((m) => m['id'] === 'feed')).toMatchObject({ type: 'complete' });
    await expect.poll(() => connections('gi-expiring')).toBe(0);
    await alive(ws);
  });

  it('revocation (disableUser) ends the operation with UNAUTHENTICATED and the reason', async () => {
    const ws = await open();
    send(ws, 'feed', NOTIFICATION_ADDED, bearer(await tokenFor({ sub: 'gi-revoked' })));
    await expect.poll(() => connections('gi-revoked')).toBe(1);
    dataOf(await execute(fetch, t.graphqlUrl, DisableUserDocument, { userId: 'gi-revoked' }, admin));
    try {
      const last = await ws.next((m) => m['id'] === 'feed');
      expect(errorOf(last)).toMatchObject({ message: 'account disabled', extensions: { code: 'UNAUTHENTICATED' } });
      expect(await ws.next((m) => m['id'] === 'feed')).toMatchObject({ type: 'complete' });
      await alive(ws);
      // And a new operation with that token is refused.
      send(ws, 'again', NOTIFICATION_ADDED, bearer(await tokenFor({ sub: 'gi-revoked' })));
      expect(errorOf(await ws.next((m) => m['id'] === 'again'))?.extensions).toMatchObject({ code: 'UNAUTHENTICATED' });
    } finally {
      dataOf(await execute(fetch, t.graphqlUrl, EnableUserDocument, { userId: 'gi-revoked' }, admin));
    }
  });

  it('presence: the user counts as connected while the operation lives, not after it ends', async () => {
    const ws = await open();
    const token = await tokenFor({ sub: 'gi-present' });
    send(ws, 'me', WHO_AM_I, bearer(token));
    await ws.next((m) => m['id'] === 'me');
    expect(await connections('gi-present')).toBe(0); // a query is not a connection
    send(ws, 'feed', NOTIFICATION_ADDED, bearer(token));
    send(ws, 'feed2', NOTIFICATION_ADDED, bearer(token));
    await expect.poll(() => connections('gi-present')).toBe(2);
    ws.send(JSON.stringify({ type: 'complete', id: 'feed' }));
    await expect.poll(() => connections('gi-present')).toBe(1);
    ws.close(); // the socket's end ends the rest
    await expect.poll(() => connections('gi-present')).toBe(0);
  });
});
