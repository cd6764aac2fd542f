/**
 * Notifications over HTTP and SSE on every backend (a Redis Cluster too): send, list, mark read, dedup within the TTL,
 * who may do what, the backlog-then-live stream under concurrent inserts (no gap, no duplicate),
 * announce to thousands of users, and notifications raised by offers, competitions and messages.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AnnounceDocument,
  CastVoteDocument,
  CloseCompetitionDocument,
  CreateCompetitionDocument,
  CreateConversationDocument,
  CreateSubmissionDocument,
  MakeOfferDocument,
  MarkNotificationsReadDocument,
  MeDocument,
  NotificationAddedDocument,
  NotificationsDocument,
  OpenCompetitionDocument,
  RespondToOfferDocument,
  SendMessageDocument,
  SendNotificationDocument,
  type NotificationAddedSubscription,
  type NotificationPriority,
} from '../generated/graphql.js';
import { useTestApp } from '../support/app.js';
import { withCluster } from '../support/backends.js';
import { testClock } from '../support/clock.js';
import { subscribe, untilSentinel, type Feed } from '../support/clients.js';
import { codesOf, dataOf, tokenFor } from '../support/graphql.js';

const RANK: Record<NotificationPriority, number> = { LOW: 0, NORMAL: 1, HIGH: 2, URGENT: 3, CRITICAL: 4 };
const PRIORITIES = Object.keys(RANK) as NotificationPriority[];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.each(withCluster)('notifications on $name', (backend) => {
  // The app's clock: TTLs run out by advancing it, not by waiting for them.
  const clock = testClock();
  const t = useTestApp(backend, {}, { now: clock.now });
  let admin: string;
  let n = 0;
  const gql = t.gql;

  /** A signed-in user (row created) and its token. */
  async function user(prefix: string, role: 'AUDIENCE' | 'FOUNDER' | 'JUDGE' = 'AUDIENCE') {
    n += 1;
    const id = `${prefix}-${n}`;
    const token = await tokenFor({ sub: id, name: `${prefix} ${n}`, role });
    dataOf(await gql(MeDocument, {}, token));
    return { id, token };
  }

  async function poll<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (done(value) || Date.now() > deadline) return value;
      await sleep(50);
    }
  }

  /**
   * Sends `userId` a notification and waits for it on `feed` (theirs): whatever was sent to them
   * before it has arrived by then. Returns the results before it.
   */
  async function sentinel(feed: Feed<NotificationAddedSubscription>, userId: string) {
    let id = '';
    return untilSentinel(
      feed,
      async () =>
        (id = dataOf(
          await gql(SendNotificationDocument, { input: { userId, type: 'SENTINEL', title: 'sentinel' } }, admin),
        ).sendNotification.id),
      (r) => r.data?.notificationAdded.id === id,
    );
  }

  beforeAll(async () => {
    admin = await tokenFor({ sub: 'notif-admin', name: 'Ada', role: 'ADMIN' });
  });

  it('sends, lists newest first without expired ones, and marks only your own read', async () => {
    const alice = await user('alice');
    const bob = await user('bob');
    const first = dataOf(
      await gql(
        SendNotificationDocument,
        { input: { userId: alice.id, type: 'T', title: ' First ', body: 'b', data: { k: [1, 'x'] } } },
        admin,
      ),
    ).sendNotification;
    expect(first).toMatchObject({
      type: 'T',
      title: 'First',
      body: 'b',
      priority: 'NORMAL',
      data: { k: [1, 'x'] },
      readAt: null,
      expiresAt: null,
    });
    const second = dataOf(
      await gql(
        SendNotificationDocument,
        { input: { userId: alice.id, type: 'T', title: 'Second', priority: 'HIGH', ttlSeconds: 600 } },
        admin,
      ),
    ).sendNotification;
    expect(second.seq).toBe(first.seq + 1);
    expect(Date.parse(second.expiresAt!) - Date.parse(second.createdAt)).toBe(600_000);
    const bobs = dataOf(
      await gql(SendNotificationDocument, { input: { userId: bob.id, type: 'T', title: 'Bob only' } }, admin),
    ).sendNotification;
    // Expired already: stored, never listed.
    await t.app.database.prisma.notification.create({
      data: {
        userId: alice.id,
        type: 'T',
        title: 'Gone',
        seq: 1000,
        createdAt: new Date(),
        expiresAt: new Date(Date.now() - 1000),
      },
    });

    let list = dataOf(await gql(NotificationsDocument, {}, alice.token)).notifications;
    expect(list.map((x) => x.title)).toEqual(['Second', 'First']);

    // Bob's id is not Alice's to mark; repeated and unknown ids count once / not at all.
    const marked = dataOf(
      await gql(MarkNotificationsReadDocument, { ids: [first.id, first.id, bobs.id, 'nope'] }, alice.token),
    ).markNotificationsRead;
    expect(marked).toBe(1);
    expect(
      dataOf(await gql(MarkNotificationsReadDocument, { ids: [first.id] }, alice.token)).markNotificationsRead,
    ).toBe(0);
    list = dataOf(await gql(NotificationsDocument, { unreadOnly: true }, alice.token)).notifications;
    expect(list.map((x) => x.id)).toEqual([second.id]);
    list = dataOf(await gql(NotificationsDocument, { first: 1 }, alice.token)).notifications;
    expect(list.map((x) => x.id)).toEqual([second.id]);
    expect(
      dataOf(await gql(NotificationsDocument, { unreadOnly: true }, bob.token)).notifications.map((x) => x.id),
    ).toEqual([bobs.id]);
  });

  it('keeps one notification per dedupKey within its TTL, and a new one after it expired', async () => {
    const carol = await user('carol');
    // 3 s: the eight concurrent sends must all land within the TTL, also on a loaded machine.
    const input = { userId: carol.id, type: 'REMINDER', title: 'Once', dedupKey: 'remind-1', ttlSeconds: 3 };
    const sent = await Promise.all(Array.from({ length: 8 }, () => gql(SendNotificationDocument, { input }, admin)));
    const ids = new Set(sent.map((r) => dataOf(r).sendNotification.id));
    expect(ids.size).toBe(1);
    // Another key, or another user with the same key, is another notification.
    const other = dataOf(
      await gql(SendNotificationDocument, { input: { ...input, dedupKey: 'remind-2' } }, admin),
    ).sendNotification;
    expect(ids.has(other.id)).toBe(false);
    clock.advance(3_100); // past the TTL
    const later = dataOf(await gql(SendNotificationDocument, { input }, admin)).sendNotification;
    expect(ids.has(later.id)).toBe(false);
    expect(await t.app.database.prisma.notification.count({ where: { userId: carol.id, dedupKey: 'remind-1' } })).toBe(
      2,
    );
  });

  it('refuses anonymous callers, non-admin senders and bad input', async () => {
    const dan = await user('dan');
    expect(codesOf(await gql(NotificationsDocument, {}))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await gql(MarkNotificationsReadDocument, { ids: [] }))).toEqual(['UNAUTHENTICATED']);
    const input = { userId: dan.id, type: 'T', title: 'x' };
    expect(codesOf(await gql(SendNotificationDocument, { input }))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await gql(SendNotificationDocument, { input }, dan.token))).toEqual(['FORBIDDEN']);
    expect(codesOf(await gql(AnnounceDocument, { input: { title: 'x' } }, dan.token))).toEqual(['FORBIDDEN']);
    const bad = await gql(SendNotificationDocument, { input: { ...input, ttlSeconds: 0 } }, admin);
    expect(codesOf(bad)).toEqual(['BAD_USER_INPUT']);
    expect(bad.errors?.[0]?.extensions?.['field']).toBe('input.ttlSeconds');
    expect(codesOf(await gql(SendNotificationDocument, { input: { ...input, title: '' } }, admin))).toEqual([
      'BAD_USER_INPUT',
    ]);
    expect(
      codesOf(await gql(SendNotificationDocument, { input: { ...input, userId: 'nobody-at-all' } }, admin)),
    ).toEqual(['NOT_FOUND']);
    expect(codesOf(await gql(NotificationsDocument, { first: 101 }, dan.token))).toEqual(['BAD_USER_INPUT']);
    const anonymous = subscribe('sse', t.url, NotificationAddedDocument, {});
    try {
      const result = await anonymous.waitFor((r) => (r.errors?.length ?? 0) > 0);
      expect(result.errors?.[0]?.extensions?.['code']).toBe('UNAUTHENTICATED');
    } finally {
      await anonymous.close();
    }
  });

  it(
    'streams the backlog (priority, then age), then live ones, each exactly once while 200 are created during the subscribe',
    { timeout: 60_000 },
    async () => {
      const erin = await user('erin');
      const notifications = t.app.services.notifications;
      // 60 queued before: mixed priorities.
      const before: string[] = [];
      for (let i = 0; i < 60; i += 1) {
        const { notification } = await notifications.notify(erin.id, {
          type: 'Q',
          title: `before ${i}`,
          priority: PRIORITIES[(i * 7) % 5]!,
        });
        before.push(notification.id);
      }
      // Read already, expired: never delivered.
      const read = (await notifications.notify(erin.id, { type: 'Q', title: 'read' })).notification;
      await t.app.database.prisma.notification.update({ where: { id: read.id }, data: { readAt: new Date() } });
      const expired = (await notifications.notify(erin.id, { type: 'Q', title: 'expired', ttlSeconds: 1 }))
        .notification;

      clock.advance(1_050); // past the TTL of `expired`
      // graphql-ws: a fresh connection (an SSE POST after this long idle stretch may pick a pooled
      // keep-alive socket the server is closing, and POSTs are not retried).
      const feed = subscribe('graphql-ws', t.url, NotificationAddedDocument, {}, erin.token);
      try {
        const during = await Promise.all(
          Array.from({ length: 200 }, (_, i) =>
            notifications
              .notify(erin.id, { type: 'LIVE', title: `during ${i}`, priority: PRIORITIES[i % 5]! })
              .then((r) => r.notification.id),
          ),
        );
        const expected = new Set([...before, ...during]);
        await feed.waitFor(() => feed.results.length >= expected.size, 20_000);
        // Anything extra (a duplicate) would arrive before a notification sent after them all.
        let sentinel = '';
        const results = await untilSentinel(
          feed,
          async () =>
            (sentinel = (await notifications.notify(erin.id, { type: 'LIVE', title: 'sentinel' })).notification.id),
          (r) => r.data?.notificationAdded.id === sentinel,
        );
        expect(feed.results.every((r) => !r.errors)).toBe(true);
        const got = results.map((r) => r.data!.notificationAdded);
        expect(got.length).toBe(expected.size);
        expect(new Set(got.map((x) => x.id))).toEqual(expected);
        expect(got.some((x) => x.id === read.id || x.id === expired.id)).toBe(false);

        // A backlog prefix in (priority desc, createdAt asc, seq asc) order holding every queued
        // one, then live ones in seq order, all newer than the backlog.
        const inBacklogOrder = (a: (typeof got)[number], b: (typeof got)[number]) =>
          RANK[a.priority] > RANK[b.priority] ||
          (a.priority === b.priority && (a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.seq < b.seq)));
        const splits = [];
        for (let k = before.length; k <= got.length; k += 1) {
          const prefix = got.slice(0, k);
          const suffix = got.slice(k);
          if (!before.every((id) => prefix.some((x) => x.id === id))) continue;
          if (!prefix.every((x, i) => i === 0 || inBacklogOrder(prefix[i - 1]!, x))) continue;
          if (!suffix.every((x, i) => i === 0 || suffix[i - 1]!.seq < x.seq)) continue;
          if (suffix.length > 0 && Math.max(...prefix.map((x) => x.seq)) >= suffix[0]!.seq) continue;
          splits.push(k);
        }
        expect(splits.length).toBeGreaterThan(0);

        // Still live afterwards: the sentinel arrived live, next after them, and once.
        expect(feed.results.slice(results.length).map((r) => r.data?.notificationAdded.id)).toEqual([sentinel]);
      } finally {
        await feed.close();
      }
    },
  );

  it('announces to every user in bulk, with per-user seqs, live to listeners', async () => {
    const prisma = t.app.database.prisma;
    const batch = `bulk-${Date.now()}`;
    await prisma.user.createMany({
      data: Array.from({ length: 2_000 }, (_, i) => ({ id: `${batch}-${String(i).padStart(4, '0')}`, name: `U${i}` })),
    });
    const disabled = await user('disabled');
    await prisma.user.update({ where: { id: disabled.id }, data: { disabledAt: new Date() } });
    const frank = await user('frank');
    const previous = dataOf(
      await gql(SendNotificationDocument, { input: { userId: frank.id, type: 'T', title: 'before' } }, admin),
    ).sendNotification;
    const feed = subscribe('sse', t.url, NotificationAddedDocument, {}, frank.token);
    try {
      await feed.waitFor((r) => r.data?.notificationAdded.id === previous.id);
      const users = await prisma.user.count({ where: { disabledAt: null } });
      const started = performance.now();
      const count = dataOf(
        await gql(AnnounceDocument, { input: { title: 'Doors open', body: 'Welcome', priority: 'HIGH' } }, admin),
      ).announce;
      const ms = performance.now() - started;
      console.log(`[${backend.name}] announce to ${count} users: ${ms.toFixed(0)} ms`);
      expect(count).toBe(users);
      expect(count).toBeGreaterThanOrEqual(2_000);
      const rows = await prisma.notification.findMany({
        where: { type: 'ANNOUNCEMENT', title: 'Doors open' },
        select: { userId: true, seq: true, priority: true },
      });
      expect(rows.length).toBe(count);
      expect(new Set(rows.map((r) => r.userId)).size).toBe(count);
      expect(rows.some((r) => r.userId === disabled.id)).toBe(false);
      expect(rows.every((r) => r.priority === 'HIGH')).toBe(true);
      expect(rows.find((r) => r.userId === frank.id)?.seq).toBe(previous.seq + 1);
      expect(rows.find((r) => r.userId === `${batch}-0000`)?.seq).toBe(1);
      const live = await feed.waitFor((r) => r.data?.notificationAdded.type === 'ANNOUNCEMENT');
      expect(live.data?.notificationAdded).toMatchObject({
        title: 'Doors open',
        body: 'Welcome',
        priority: 'HIGH',
        seq: previous.seq + 1,
      });
      // A user who was not listening finds it queued.
      const list = await t.app.services.notifications.list(
        { id: `${batch}-1999`, name: 'U', role: 'AUDIENCE' },
        { unreadOnly: true },
      );
      expect(list.map((x) => x.title)).toEqual(['Doors open']);
    } finally {
      await feed.close();
    }
  });

  it('notifies the founder of an offer on their submission, and the judge of the answer', async () => {
    const founder = await user('founder', 'FOUNDER');
    const judge = await user('judge', 'JUDGE');
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Tank', votingMethod: 'SIMPLE' } }, admin),
    );
    const { createSubmission } = dataOf(
      await gql(
        CreateSubmissionDocument,
        { input: { competitionId: createCompetition.id, title: 'Rocket', founderId: founder.id } },
        admin,
      ),
    );
    const session = await t.app.database.prisma.eventSession.create({
      data: {
        competitionId: createCompetition.id,
        submissionIds: [createSubmission.id],
        presentationSeconds: 60,
        status: 'LIVE',
      },
    });
    const feed = subscribe('sse', t.url, NotificationAddedDocument, {}, founder.token);
    try {
      const offer = dataOf(
        await gql(
          MakeOfferDocument,
          {
            input: {
              sessionId: session.id,
              submissionId: createSubmission.id,
              type: 'EQUITY',
              amount: 50_000,
              equityPercentage: 5,
            },
          },
          judge.token,
        ),
      ).makeOffer;
      const received = await feed.waitFor((r) => r.data?.notificationAdded.type === 'OFFER_RECEIVED');
      expect(received.data?.notificationAdded).toMatchObject({
        priority: 'HIGH',
        data: { offerId: offer.id, submissionId: createSubmission.id },
      });
      expect(received.data?.notificationAdded.title).toContain('Rocket');

      dataOf(await gql(RespondToOfferDocument, { input: { offerId: offer.id, response: 'ACCEPT' } }, founder.token));
      const judges = await poll(
        async () => dataOf(await gql(NotificationsDocument, {}, judge.token)).notifications,
        (list) => list.length > 0,
      );
      expect(judges.map((x) => [x.type, (x.data as { offerId: string }).offerId])).toEqual([
        ['OFFER_ACCEPTED', offer.id],
      ]);
      const delivered = await sentinel(feed, founder.id);
      expect(delivered.filter((r) => r.data?.notificationAdded.type === 'OFFER_RECEIVED')).toHaveLength(1);
    } finally {
      await feed.close();
    }
  });

  it('notifies the voters of a competition when it closes', async () => {
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Pitch', votingMethod: 'SIMPLE' } }, admin),
    );
    const { createSubmission } = dataOf(
      await gql(CreateSubmissionDocument, { input: { competitionId: createCompetition.id, title: 'A' } }, admin),
    );
    dataOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin));
    const voters = await Promise.all([user('voter'), user('voter'), user('voter')]);
    const bystander = await user('bystander');
    for (const voter of voters) {
      dataOf(
        await gql(
          CastVoteDocument,
          { input: { competitionId: createCompetition.id, submissionId: createSubmission.id } },
          voter.token,
        ),
      );
    }
    dataOf(await gql(CloseCompetitionDocument, { id: createCompetition.id }, admin));
    for (const voter of voters) {
      const list = await poll(
        async () => dataOf(await gql(NotificationsDocument, {}, voter.token)).notifications,
        (l) => l.length > 0,
      );
      expect(list.map((x) => [x.type, (x.data as { competitionId: string }).competitionId])).toEqual([
        ['COMPETITION_CLOSED', createCompetition.id],
      ]);
    }
    expect(dataOf(await gql(NotificationsDocument, {}, bystander.token)).notifications).toEqual([]);
  });

  it('notifies message recipients that have no connection', async () => {
    const [gina, hal, ivy] = await Promise.all([user('gina'), user('hal'), user('ivy')]);
    // Ivy is connected (a notificationAdded stream); Hal is not.
    const ivyFeed: Feed<NotificationAddedSubscription> = subscribe(
      'sse',
      t.url,
      NotificationAddedDocument,
      {},
      ivy.token,
    );
    try {
      const warm = dataOf(
        await gql(SendNotificationDocument, { input: { userId: ivy.id, type: 'T', title: 'warm-up' } }, admin),
      ).sendNotification;
      await ivyFeed.waitFor((r) => r.data?.notificationAdded.id === warm.id);
      const conversation = dataOf(
        await gql(CreateConversationDocument, { participantIds: [hal.id, ivy.id], title: 'Team' }, gina.token),
      ).createConversation;
      const message = dataOf(
        await gql(SendMessageDocument, { input: { conversationId: conversation.id, body: 'Ship it' } }, gina.token),
      ).sendMessage;
      const hals = await poll(
        async () => dataOf(await gql(NotificationsDocument, {}, hal.token)).notifications,
        (l) => l.length > 0,
      );
      expect(hals).toHaveLength(1);
      expect(hals[0]).toMatchObject({
        type: 'MESSAGE',
        body: 'Ship it',
        data: { conversationId: conversation.id, messageId: message.id },
      });
      const delivered = await sentinel(ivyFeed, ivy.id);
      expect(delivered.some((r) => r.data?.notificationAdded.type === 'MESSAGE')).toBe(false);
      expect(dataOf(await gql(NotificationsDocument, {}, gina.token)).notifications).toEqual([]);
    } finally {
      await ivyFeed.close();
    }
  });
});
