/**
 * Presence across two server processes sharing PostgreSQL and Redis, with real clients on every
 * transport, short TTL and grace: connection counting across instances and transports, the grace
 * (no OFFLINE before it, none at all for a quick reconnect), setPresence seen from the other
 * instance, and an instance killed with SIGKILL whose users still go OFFLINE.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  PresenceChangedDocument,
  PresenceDocument,
  SetPresenceDocument,
  type PresenceChangedSubscription,
} from '../generated/graphql.js';
import { subscribe, type Feed, type Transport } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { freshDatabase } from '../support/backends.js';
import { startRedis } from '../support/redis.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';

const GRACE_MS = 1_500;
const TTL_MS = 1_500;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let stopInfra: () => Promise<void>;
let env: Record<string, string>;
let a: ServerProcess;
let b: ServerProcess;
const feeds: Feed<unknown>[] = [];

beforeAll(async () => {
  const [database, redis] = await Promise.all([freshDatabase({ migrated: false }), startRedis()]);
  stopInfra = async () => void (await Promise.all([database.drop(), redis.stop()]));
  env = {
    DATABASE_URL: database.url,
    REDIS_URL: redis.url,
    PRESENCE_OFFLINE_GRACE_MS: String(GRACE_MS),
    PRESENCE_CONNECTION_TTL_MS: String(TTL_MS),
  };
  [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
});
afterAll(async () => {
  await Promise.all(feeds.map((f) => f.close()));
  await Promise.all([a?.stop(), b?.stop()]);
  await stopInfra?.();
});

type PresenceFeed = Feed<PresenceChangedSubscription>;

/** A presence feed; with a token it is also a live connection of that user. */
function feed(transport: Transport, server: ServerProcess, userId: string, token?: string): PresenceFeed {
  const f = subscribe(transport, server.url, PresenceChangedDocument, { userIds: [userId] }, token);
  feeds.push(f);
  return f;
}
const states = (f: PresenceFeed) =>
  f.results.map((r) => (r.data ? `${r.data.presenceChanged.status}/${r.data.presenceChanged.connections}` : 'error'));
const presenceOn = async (server: ServerProcess, userId: string) =>
  dataOf(await execute(fetch, server.graphqlUrl, PresenceDocument, { userIds: [userId] })).presence[0]!;

describe('presence on two instances', () => {
  it('counts a user’s connections on both instances and transports; OFFLINE only after the grace; events reach both', async () => {
    const token = await tokenFor({ sub: 'pres-alice' });
    const watchA = feed('graphql-sse', a, 'pres-alice'); // anonymous watchers: not connections
    const watchB = feed('sse', b, 'pres-alice');
    await Promise.all([watchA, watchB].map((w) => w.waitFor((r) => r.data?.presenceChanged.status === 'OFFLINE')));

    const ws = feed('graphql-ws', a, 'pres-alice', token);
    await ws.waitFor((r) => r.data !== undefined);
    const sse = feed('sse', b, 'pres-alice', token);
    await sse.waitFor((r) => r.data !== undefined);
    for (const w of [watchA, watchB]) await w.waitFor((r) => r.data?.presenceChanged.connections === 2);
    expect(await presenceOn(b, 'pres-alice')).toMatchObject({ status: 'ONLINE', connections: 2, lastSeenAt: null });

    await ws.close();
    await expect.poll(async () => (await presenceOn(b, 'pres-alice')).connections).toBe(1);
    expect((await presenceOn(a, 'pres-alice')).status).toBe('ONLINE');

    await sse.close();
    const closedAt = Date.now();
    await expect.poll(async () => (await presenceOn(a, 'pres-alice')).connections).toBe(0);
    await sleep(Math.max(0, closedAt + GRACE_MS / 2 - Date.now()));
    expect((await presenceOn(a, 'pres-alice')).status).toBe('ONLINE'); // still within the grace
    for (const w of [watchA, watchB]) {
      const offline = await w.waitFor(
        (r) => r.data?.presenceChanged.status === 'OFFLINE' && r.data.presenceChanged.lastSeenAt !== null,
        10_000,
      );
      expect(Date.parse(offline.data!.presenceChanged.lastSeenAt!)).toBeGreaterThanOrEqual(closedAt - 1_000);
    }
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(GRACE_MS - 200);
    await sleep(500);
    for (const w of [watchA, watchB])
      expect(states(w)).toEqual(['OFFLINE/0', 'ONLINE/1', 'ONLINE/2', 'ONLINE/1', 'ONLINE/0', 'OFFLINE/0']);
  });

  it('a quick reconnect on the other instance (graphql-sse) does not flap', async () => {
    const token = await tokenFor({ sub: 'pres-bob' });
    const watch = feed('sse', a, 'pres-bob');
    await watch.waitFor((r) => r.data !== undefined);
    const first = feed('graphql-ws', a, 'pres-bob', token);
    await watch.waitFor((r) => r.data?.presenceChanged.connections === 1);
    await first.close();
    await watch.waitFor((r) => r.data?.presenceChanged.status === 'ONLINE' && r.data.presenceChanged.connections === 0);
    const second = feed('graphql-sse', b, 'pres-bob', token); // single-connection SSE stream
    await expect.poll(() => states(watch)).toEqual(['OFFLINE/0', 'ONLINE/1', 'ONLINE/0', 'ONLINE/1']);
    await sleep(GRACE_MS + 1_000);
    expect(states(watch)).toEqual(['OFFLINE/0', 'ONLINE/1', 'ONLINE/0', 'ONLINE/1']);
    expect(await presenceOn(b, 'pres-bob')).toMatchObject({ status: 'ONLINE', connections: 1 });
    await second.close();
  });

  it('setPresence DND on one instance is seen on the other', async () => {
    const token = await tokenFor({ sub: 'pres-cat' });
    const watch = feed('graphql-ws', b, 'pres-cat');
    const own = feed('graphql-ws', a, 'pres-cat', token);
    await own.waitFor((r) => r.data?.presenceChanged.connections === 1);
    const set = dataOf(
      await execute(fetch, a.graphqlUrl, SetPresenceDocument, { status: 'DND', statusMessage: 'pitching' }, token),
    );
    expect(set.setPresence).toMatchObject({ status: 'DND', statusMessage: 'pitching' });
    await watch.waitFor((r) => r.data?.presenceChanged.status === 'DND');
    expect(await presenceOn(b, 'pres-cat')).toMatchObject({ status: 'DND', statusMessage: 'pitching', connections: 1 });
    await own.close();
  });

  it('an instance killed with SIGKILL: its users’ entries expire and they go OFFLINE, once', async () => {
    const c = await startServerProcess(env);
    try {
      const token = await tokenFor({ sub: 'pres-dan' });
      const watch = feed('sse', a, 'pres-dan');
      await watch.waitFor((r) => r.data !== undefined);
      const onC = feed('graphql-ws', c, 'pres-dan', token);
      await watch.waitFor((r) => r.data?.presenceChanged.connections === 1);
      await c.stop('SIGKILL');
      const killedAt = Date.now();
      const offline = await watch.waitFor(
        (r) =>
          r.data?.presenceChanged.status === 'OFFLINE' &&
          r.data.presenceChanged.connections === 0 &&
          r.data.presenceChanged.lastSeenAt !== null,
        15_000,
      );
      // The entry lived up to one TTL past its last refresh (every TTL/3), then the grace.
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual((TTL_MS * 2) / 3 + GRACE_MS - 300);
      expect(offline).toBeDefined();
      await sleep(1_000);
      expect(states(watch)).toEqual(['OFFLINE/0', 'ONLINE/1', 'ONLINE/0', 'OFFLINE/0']);
      await onC.close();
    } finally {
      await c.stop('SIGKILL');
    }
  });
});
