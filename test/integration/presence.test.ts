/**
 * Presence on a real Redis: several store instances (one per "server instance") on one server,
 * with short TTL and grace. Then presence and follows through HTTP on every backend (a Redis Cluster too).
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FollowDocument,
  FollowersDocument,
  FollowingDocument,
  FollowingPresenceChangedDocument,
  MeDocument,
  OnlineFollowingDocument,
  PresenceChangedDocument,
  PresenceDocument,
  SetPresenceDocument,
  UnfollowDocument,
} from '../generated/graphql.js';
import type { PresenceView } from '../../src/modules/presence/presence.rules.js';
import { createRedisPresenceStore } from '../../src/modules/presence/presence.store.redis.js';
import { createPresenceTracker, type PresenceTracker } from '../../src/modules/presence/presence.tracker.js';
import { useTestApp } from '../support/app.js';
import { withCluster } from '../support/backends.js';
import { subscribe, type Feed } from '../support/clients.js';
import { codesOf, dataOf, tokenFor } from '../support/graphql.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('Redis presence store, several instances on one Redis', () => {
  const rules = { awayAfterMs: 60_000, offlineGraceMs: 400 };
  const TTL = 600;
  let server: RedisServer;
  const clients: Redis[] = [];
  const trackers: PresenceTracker[] = [];
  const announced: { instance: string; userId: string; seq: number; view: PresenceView }[] = [];
  const errors: unknown[] = [];

  function instance(name: string, opts: { timers?: boolean; db?: number } = {}): PresenceTracker {
    const redis = new Redis(server.url, { db: opts.db ?? 0 });
    clients.push(redis);
    const tracker = createPresenceTracker({
      store: createRedisPresenceStore({ redis, offlineGraceMs: rules.offlineGraceMs, recheckMs: 200 }),
      instanceId: name,
      rules,
      connectionTtlMs: TTL,
      timers: opts.timers ?? true,
      announce: (userId, seq, view) => announced.push({ instance: name, userId, seq, view }),
      onError: (message, details) => errors.push({ message, details }),
    });
    trackers.push(tracker);
    return tracker;
  }
  const of = (userId: string) => announced.filter((a) => a.userId === userId);
  const statuses = (userId: string) => of(userId).map((a) => `${a.view.status}/${a.view.connections}`);

  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(trackers.map((t) => t.close()));
    await Promise.all(clients.map((c) => c.quit()));
    await server?.stop();
  });

  it('counts connections across instances; OFFLINE once, after the grace; seq strictly increasing', async () => {
    const a = instance('a');
    const b = instance('b');
    const ws = a.open('alice', 'graphql-ws');
    await ws.ready;
    const sse = b.open('alice', 'sse');
    await sse.ready;
    expect((await b.read(['alice']))[0]!.view).toMatchObject({ status: 'ONLINE', connections: 2, lastSeenAt: null });
    await sleep(TTL * 2); // heartbeats keep both entries alive
    expect((await a.read(['alice']))[0]!.view.connections).toBe(2);

    ws.close();
    await expect.poll(async () => (await b.read(['alice']))[0]!.view.connections).toBe(1);
    sse.close();
    await expect
      .poll(async () => (await a.read(['alice']))[0]!.view)
      .toMatchObject({ status: 'ONLINE', connections: 0 });
    const closedAt = Date.now();
    await expect
      .poll(async () => (await a.read(['alice']))[0]!.view.status, { timeout: 5_000, interval: 20 })
      .toBe('OFFLINE');
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(rules.offlineGraceMs - 50);
    await sleep(500);
    expect(statuses('alice')).toEqual(['ONLINE/1', 'ONLINE/2', 'ONLINE/1', 'ONLINE/0', 'OFFLINE/0']);
    const seqs = of('alice').map((a) => a.seq);
    for (let i = 1; i < seqs.length; i += 1) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    expect(of('alice').at(-1)!.view.lastSeenAt).not.toBeNull();
  });

  it("a dead instance's entries expire after the TTL: OFFLINE exactly once, announced by a survivor", async () => {
    const dead = instance('dead', { timers: false }); // no heartbeats, no sweeps: it "died"
    instance('b');
    instance('c');
    await dead.open('carol', 'graphql-ws').ready;
    const opened = Date.now();
    await expect.poll(() => of('carol').at(-1)?.view.status, { timeout: 10_000, interval: 50 }).toBe('OFFLINE');
    expect(Date.now() - opened).toBeGreaterThanOrEqual(TTL + rules.offlineGraceMs - 100);
    await sleep(1_000);
    expect(statuses('carol')).toEqual(['ONLINE/1', 'ONLINE/0', 'OFFLINE/0']);
    expect(
      of('carol')
        .filter((a) => a.view.status !== 'ONLINE' || a.view.connections === 0)
        .every((a) => a.instance !== 'dead'),
    ).toBe(true);
  });

  it('a reconnect within the grace does not flap; DND set on one instance is visible on another', async () => {
    const a = instance('a2');
    const b = instance('b2');
    const first = a.open('dora', 'graphql-ws');
    await first.ready;
    expect(await b.setStatus('dora', 'DND', 'deep work')).toMatchObject({
      view: { status: 'DND', statusMessage: 'deep work' },
    });
    expect((await a.read(['dora']))[0]!.view).toMatchObject({
      status: 'DND',
      statusMessage: 'deep work',
      connections: 1,
    });
    first.close();
    await sleep(rules.offlineGraceMs / 2);
    await b.open('dora', 'sse').ready;
    await sleep(rules.offlineGraceMs * 3);
    expect(statuses('dora')).toEqual(['ONLINE/1', 'DND/1', 'DND/0', 'DND/1']);
  });

  it('a reconnect after an OFFLINE nobody announced yet announces it first and drops DND', async () => {
    // Its own database: no sweeper of the other tests' instances sees eve.
    const a = instance('quiet', { timers: false, db: 1 });
    const lease = a.open('eve', 'graphql-ws');
    await lease.ready;
    await a.setStatus('eve', 'DND', 'x');
    lease.close();
    await expect.poll(() => statuses('eve').at(-1)).toBe('DND/0');
    await sleep(rules.offlineGraceMs + 100); // no sweeper ran: OFFLINE by the rules, not announced
    expect(statuses('eve')).toEqual(['ONLINE/1', 'DND/1', 'DND/0']);
    await a.open('eve', 'sse').ready;
    expect(statuses('eve')).toEqual(['ONLINE/1', 'DND/1', 'DND/0', 'OFFLINE/0', 'ONLINE/1']);
    expect(of('eve').at(-1)!.view.statusMessage).toBeNull();
    expect(await a.setStatus('nobody', 'DND', null)).toBe('offline');
    expect(errors).toEqual([]);
  });
});

describe.each(withCluster)('presence and follows over HTTP on $name', (backend) => {
  const t = useTestApp(backend, { PRESENCE_OFFLINE_GRACE_MS: '300', PRESENCE_CONNECTION_TTL_MS: '1500' });
  const tokens: Record<string, string> = {};
  const feeds: Feed<unknown>[] = [];

  beforeAll(async () => {
    for (const name of ['ann', 'ben', 'cat']) {
      tokens[name] = await tokenFor({ sub: name, name });
      dataOf(await t.gql(MeDocument, {}, tokens[name])); // first sight creates the user
    }
  });
  afterAll(async () => {
    await Promise.all(feeds.map((f) => f.close()));
  });
  const id = (name: string) => name; // each backend has its own database and store
  const gql = <R, V>(doc: TypedDocumentNode<R, V>, variables: V, who?: string) =>
    t.gql(doc, variables, who ? tokens[who] : undefined);

  it('follow / unfollow: idempotent, listed both ways, refused for yourself, unknown users and anonymous callers', async () => {
    expect(dataOf(await gql(FollowDocument, { userId: id('ben') }, 'ann')).follow).toEqual({
      id: id('ben'),
      name: 'ben',
    });
    dataOf(await gql(FollowDocument, { userId: id('ben') }, 'ann'));
    dataOf(await gql(FollowDocument, { userId: id('cat') }, 'ann'));
    expect(
      dataOf(await gql(FollowingDocument, {}, 'ann'))
        .following.map((u) => u.id)
        .sort(),
    ).toEqual([id('ben'), id('cat')]);
    expect(dataOf(await gql(FollowingDocument, { first: 1 }, 'ann')).following).toHaveLength(1);
    expect(dataOf(await gql(FollowersDocument, {}, 'ben')).followers).toEqual([{ id: id('ann') }]);

    expect(codesOf(await gql(FollowDocument, { userId: id('ann') }, 'ann'))).toEqual(['BAD_USER_INPUT']);
    expect(codesOf(await gql(FollowDocument, { userId: 'nobody-at-all' }, 'ann'))).toEqual(['NOT_FOUND']);
    expect(codesOf(await gql(FollowDocument, { userId: id('ben') }))).toEqual(['UNAUTHENTICATED']);

    dataOf(await gql(UnfollowDocument, { userId: id('cat') }, 'ann'));
    dataOf(await gql(UnfollowDocument, { userId: id('cat') }, 'ann'));
    expect(dataOf(await gql(FollowingDocument, {}, 'ann')).following.map((u) => u.id)).toEqual([id('ben')]);
  });

  it('presence follows connections; onlineFollowing and followingPresenceChanged see it; lastSeenAt is kept', async () => {
    const read = async (who: string) => dataOf(await gql(PresenceDocument, { userIds: [id(who)] })).presence[0]!;
    expect(await read('ben')).toMatchObject({ status: 'OFFLINE', connections: 0, lastSeenAt: null });
    expect(dataOf(await gql(OnlineFollowingDocument, {}, 'ann')).onlineFollowing).toEqual([]);
    expect(codesOf(await gql(SetPresenceDocument, { status: 'DND' }, 'ben'))).toEqual(['CONFLICT']);

    const watch = subscribe('sse', t.url, FollowingPresenceChangedDocument, {}, tokens['ann']);
    feeds.push(watch);
    await watch.waitFor((r) => r.data?.followingPresenceChanged.userId === id('ben'));

    // ben connects over graphql-ws (his own presence feed keeps the connection open).
    const ben = subscribe('graphql-ws', t.url, PresenceChangedDocument, { userIds: [id('ben')] }, tokens['ben']);
    feeds.push(ben);
    await ben.waitFor((r) => r.data?.presenceChanged.connections === 1);
    expect(await read('ben')).toMatchObject({ status: 'ONLINE', connections: 1, lastSeenAt: null });
    expect(dataOf(await gql(OnlineFollowingDocument, {}, 'ann')).onlineFollowing).toMatchObject([
      { userId: id('ben'), status: 'ONLINE' },
    ]);

    const set = dataOf(
      await gql(SetPresenceDocument, { status: 'DND', statusMessage: '  on stage  ' }, 'ben'),
    ).setPresence;
    expect(set).toMatchObject({ status: 'DND', statusMessage: 'on stage', connections: 1 });
    await watch.waitFor((r) => r.data?.followingPresenceChanged.status === 'DND');
    expect(dataOf(await gql(OnlineFollowingDocument, {}, 'ann')).onlineFollowing).toMatchObject([
      { status: 'DND', statusMessage: 'on stage' },
    ]);

    expect(codesOf(await gql(SetPresenceDocument, { status: 'OFFLINE' }, 'ben'))).toEqual(['BAD_USER_INPUT']);
    expect(codesOf(await gql(SetPresenceDocument, { status: 'DND', statusMessage: 'x'.repeat(201) }, 'ben'))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(codesOf(await gql(SetPresenceDocument, { status: 'DND' }))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await gql(PresenceDocument, { userIds: [] }))).toEqual(['BAD_USER_INPUT']);

    await ben.close();
    const closedAt = Date.now();
    // Not the snapshot (OFFLINE, never seen): the OFFLINE after the grace.
    const offline = await watch.waitFor(
      (r) =>
        r.data?.followingPresenceChanged.status === 'OFFLINE' && r.data.followingPresenceChanged.lastSeenAt !== null,
      5_000,
    );
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(250);
    expect(watch.results.map((r) => r.data?.followingPresenceChanged.status)).toEqual([
      'OFFLINE',
      'ONLINE',
      'DND',
      'DND',
      'OFFLINE',
    ]);
    expect(offline.data!.followingPresenceChanged).toMatchObject({ statusMessage: null, connections: 0 });
    expect(dataOf(await gql(OnlineFollowingDocument, {}, 'ann')).onlineFollowing).toEqual([]);
    const after = await read('ben');
    expect(after).toMatchObject({ status: 'OFFLINE', statusMessage: null });
    expect(after.lastSeenAt).toBe(offline.data!.followingPresenceChanged.lastSeenAt);
    // Persisted on the user (what presence answers once the store forgets the record).
    const lastSeen = async () =>
      (await t.app.database.prisma.user.findUnique({ where: { id: id('ben') } }))?.lastSeenAt?.toISOString();
    await expect.poll(lastSeen).toBe(after.lastSeenAt);
  });
});
