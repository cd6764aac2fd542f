/**
 * Notifications across two server processes sharing PostgreSQL and Redis: a user connected with
 * graphql-ws on A and SSE on B gets every notification sent through either instance on both
 * connections, once each, in seq order (announce included: its audience check sees subscribers
 * on every instance); a user with no connection loses nothing and later gets the backlog,
 * highest priority first, then oldest first, then live ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnnounceDocument,
  MarkNotificationsReadDocument,
  MeDocument,
  NotificationAddedDocument,
  NotificationsDocument,
  SendNotificationDocument,
  type NotificationAddedSubscription,
  type NotificationPriority,
} from '../generated/graphql.js';
import { subscribe, type Feed } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import { startCluster, type Cluster } from '../support/cluster.js';
import type { ServerProcess } from '../support/server-process.js';

let a: ServerProcess;
let b: ServerProcess;

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster();
  ({ a, b } = cluster);
});
afterAll(async () => {
  await cluster?.stop();
});

const gql = <R, V>(server: ServerProcess, doc: Parameters<typeof execute<R, V>>[2], variables: V, token?: string) =>
  execute(fetch, server.graphqlUrl, doc, variables, token);
const RANK: Record<NotificationPriority, number> = { LOW: 0, NORMAL: 1, HIGH: 2, URGENT: 3, CRITICAL: 4 };

describe('notifications on two instances', () => {
  it('reach every connection of the user on every instance, once each, in seq order', async () => {
    const admin = await tokenFor({ sub: 'e2e-notif-admin', name: 'Admin', role: 'ADMIN' });
    const uma = await tokenFor({ sub: 'e2e-uma', name: 'Uma' });
    dataOf(await gql(a, MeDocument, {}, uma));
    const feeds: Feed<NotificationAddedSubscription>[] = [
      subscribe('graphql-ws', a.url, NotificationAddedDocument, {}, uma),
      subscribe('sse', b.url, NotificationAddedDocument, {}, uma),
    ];
    try {
      // Sent at once, through both instances: whatever was sent before a stream was live comes
      // as its backlog, the rest live, so nothing needs to wait for the streams.
      const sent: string[] = [];
      for (let i = 0; i < 12; i += 1) {
        const via = i % 2 === 0 ? a : b;
        sent.push(
          dataOf(
            await gql(
              via,
              SendNotificationDocument,
              { input: { userId: 'e2e-uma', type: 'PING', title: `ping ${i}` } },
              admin,
            ),
          ).sendNotification.id,
        );
      }
      for (const feed of feeds) await feed.waitFor((r) => r.data?.notificationAdded.id === sent.at(-1), 15_000);
      // Now both are certainly live: an announce through B reaches both connections (NUMSUB sees A's and B's subscribers).
      const count = dataOf(
        await gql(b, AnnounceDocument, { input: { title: 'Doors open', priority: 'URGENT' } }, admin),
      ).announce;
      expect(count).toBeGreaterThanOrEqual(1);
      for (const feed of feeds) await feed.waitFor((r) => r.data?.notificationAdded.type === 'ANNOUNCEMENT', 15_000);
      // A duplicate would arrive before a notification sent after the announce returned (one topic
      // per user, delivered in order): wait for that one on both, and look at what came before it.
      const sentinel = dataOf(
        await gql(
          a,
          SendNotificationDocument,
          { input: { userId: 'e2e-uma', type: 'SENTINEL', title: 'sentinel' } },
          admin,
        ),
      ).sendNotification.id;
      const isSentinel = (r: (typeof feeds)[number]['results'][number]) => r.data?.notificationAdded.id === sentinel;
      for (const feed of feeds) await feed.waitFor(isSentinel, 15_000);
      for (const feed of feeds) {
        const got = feed.results.slice(0, feed.results.findIndex(isSentinel)).map((r) => r.data!.notificationAdded);
        expect(feed.results.every((r) => !r.errors)).toBe(true);
        expect(
          got
            .filter((x) => x.type === 'PING')
            .map((x) => x.id)
            .sort(),
        ).toEqual([...sent].sort());
        expect(got.filter((x) => x.type === 'ANNOUNCEMENT')).toHaveLength(1);
        expect(new Set(got.map((x) => x.id)).size).toBe(got.length);
        // All NORMAL: backlog (oldest first) and live (seq order) agree: seq order throughout.
        const seqs = got.filter((x) => x.type === 'PING').map((x) => x.seq);
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
      }
    } finally {
      await Promise.all(feeds.map((feed) => feed.close()));
    }
  });

  it('queue for a user with no connection, who later gets the backlog in order, then live ones', async () => {
    const admin = await tokenFor({ sub: 'e2e-notif-admin', name: 'Admin', role: 'ADMIN' });
    const vic = await tokenFor({ sub: 'e2e-vic', name: 'Vic' });
    dataOf(await gql(b, MeDocument, {}, vic));
    const plan: [NotificationPriority, string][] = [
      ['LOW', 'low 1'],
      ['HIGH', 'high 1'],
      ['NORMAL', 'normal 1'],
      ['CRITICAL', 'critical 1'],
      ['HIGH', 'high 2'],
      ['LOW', 'low 2'],
    ];
    for (const [i, [priority, title]] of plan.entries()) {
      dataOf(
        await gql(
          i % 2 === 0 ? a : b,
          SendNotificationDocument,
          { input: { userId: 'e2e-vic', type: 'QUEUED', title, priority } },
          admin,
        ),
      );
    }
    // One read already: not queued any more.
    const { notifications } = dataOf(await gql(a, NotificationsDocument, {}, vic));
    const low2 = notifications.find((x) => x.title === 'low 2')!;
    const { markNotificationsRead } = dataOf(await gql(a, MarkNotificationsReadDocument, { ids: [low2.id] }, vic));
    expect(markNotificationsRead).toBe(1);

    const feed = subscribe('graphql-sse', b.url, NotificationAddedDocument, {}, vic);
    try {
      await feed.waitFor(() => feed.results.length >= 5, 15_000);
      expect(feed.results.map((r) => r.data!.notificationAdded.title)).toEqual([
        'critical 1',
        'high 1',
        'high 2',
        'normal 1',
        'low 1',
      ]);
      const backlog = feed.results.map((r) => r.data!.notificationAdded);
      for (let i = 1; i < backlog.length; i += 1)
        expect(RANK[backlog[i - 1]!.priority]).toBeGreaterThanOrEqual(RANK[backlog[i]!.priority]);
      const live = dataOf(
        await gql(
          a,
          SendNotificationDocument,
          { input: { userId: 'e2e-vic', type: 'LIVE', title: 'live 1', priority: 'LOW' } },
          admin,
        ),
      ).sendNotification;
      await feed.waitFor((r) => r.data?.notificationAdded.id === live.id, 15_000);
      expect(feed.results).toHaveLength(6);
    } finally {
      await feed.close();
    }
  });
});
