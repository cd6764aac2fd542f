/**
 * Persisted, per-user notifications, delivered live on `notifications:<userId>` to every
 * connection of the user on every instance, and queued for users with none.
 *
 * - One notification: one transaction: (dedupKey: advisory lock on (user, key), then the newest
 *   unexpired notification with that key is returned instead of a new one) → nextSeq of the
 *   user's topic → insert. Published after the commit.
 * - Many users (announce, a competition's voters): one INSERT … SELECT per chunk of users that
 *   also bumps every target's TopicSequence row (a single upsert … RETURNING joined into the
 *   insert): no round trip per user. Then published only to users somebody listens for
 *   (NotificationAudience), in batches; the others find the rows as their backlog.
 * - notificationAdded: see notifications.stream.ts.
 *
 * Locks: advisory (user, key) → TopicSequence rows (in user id order for bulk). A transaction
 * holds at most one advisory lock of one user, or a sorted set of them (bulk with a key), so
 * no cycle is possible.
 *
 * One file on purpose: single, bulk and deduplicated inserts and the backlog-then-live stream share
 * the per-user seq discipline they all rely on.
 */
import { Prisma, type PrismaClient } from '../../generated/prisma/client.js';
import type { NotificationPriority } from '../../generated/prisma/enums.js';
import { notFound } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';
import type { EventBus, TopicSubscription } from '../../realtime/event-bus.js';
import { latestSeq } from '../../realtime/event-log.js';
import { readEventPage, resumableStream, type EventPage, type TopicHistory } from '../../realtime/resume.js';
import { currentSeq, ensureTopic, nextSeq } from '../../realtime/sequence.js';
import {
  notificationsTopic,
  publishNotification,
  toEvent,
  toView,
  type NotificationEvent,
  type NotificationView,
} from './notifications.events.js';

import {
  dedupHit,
  expiresAtFor,
  isLive,
  listLimit,
  validateIds,
  validateNotify,
  type NotificationDraft,
  type NotifyInput,
} from './notifications.rules.js';
import type { NotificationAudience } from './notifications.store.js';
import { backlogThenLive } from './notifications.stream.js';

export type { NotifyInput } from './notifications.rules.js';

export interface SendNotificationInput extends NotifyInput {
  userId: string;
}

export interface AnnounceInput {
  title: string;
  body?: string | null;
  priority?: NotificationPriority | null;
  ttlSeconds?: number | null;
}

export interface NotifyResult {
  notification: NotificationView;
  /** False when the dedupKey matched an unexpired notification (returned, nothing published). */
  created: boolean;
}

export interface NotificationsServiceDeps {
  prisma: PrismaClient;
  bus: EventBus;
  audience: NotificationAudience;
  /** Users per INSERT … SELECT statement in bulk sends. */
  bulkChunk?: number;
  /** Events published before yielding to the event loop in bulk sends. */
  publishBatch?: number;
  /** How long a subscriber waits on the bus for a missing seq before reading it from the table. */
  gapWaitMs?: number;
  /** Backlog rows read per page by a subscriber. */
  backlogPage?: number;
  now?: () => Date;
}

type Tx = Prisma.TransactionClient;

/** A stored notification: the view's fields with Dates, and its dedupKey. */
interface NotificationRow extends Omit<NotificationView, 'createdAt' | 'readAt' | 'expiresAt'> {
  dedupKey: string | null;
  createdAt: Date;
  readAt: Date | null;
  expiresAt: Date | null;
}

const TOPIC_PREFIX = notificationsTopic('');
const ANNOUNCEMENT_TYPE = 'ANNOUNCEMENT';

const rowView = (row: NotificationRow): NotificationView => toView({ ...row, data: row.data ?? null });

// "priority" is selected as text (enum values read back as plain strings); ORDER BY must then name
// the table's column ("Notification"."priority", enum order), not the text alias (alphabetical).
const SELECT_COLUMNS = Prisma.sql`"id", "userId", "type", "title", "body", "priority"::text AS "priority", "data", "dedupKey",
  "seq", "createdAt", "readAt", "expiresAt"`;

export function createNotificationsService(deps: NotificationsServiceDeps) {
  const { prisma, bus, audience } = deps;
  const bulkChunk = deps.bulkChunk ?? 5_000;
  const publishBatch = deps.publishBatch ?? 1_000;
  const gapWaitMs = deps.gapWaitMs ?? 150;
  const backlogPage = deps.backlogPage ?? 100;
  const clock = deps.now ?? (() => new Date());

  async function insertOne(userId: string, draft: NotificationDraft): Promise<NotifyResult> {
    const { row, created } = await prisma.$transaction(async (tx) => {
      const now = clock();
      if (draft.dedupKey !== null) {
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${userId}), hashtext(${draft.dedupKey}))`;
        const candidates = await tx.$queryRaw<NotificationRow[]>`
          SELECT ${SELECT_COLUMNS} FROM "Notification"
          WHERE "userId" = ${userId} AND "dedupKey" = ${draft.dedupKey} AND ("expiresAt" IS NULL OR "expiresAt" > ${now})`;
        const hit = dedupHit(candidates, draft.dedupKey, now);
        if (hit) return { row: hit, created: false };
      }
      const seq = await nextSeq(tx, notificationsTopic(userId));
      const inserted = await tx.notification.create({
        data: {
          userId,
          type: draft.type,
          title: draft.title,
          body: draft.body,
          priority: draft.priority,
          data: draft.data === null ? Prisma.DbNull : (draft.data as Prisma.InputJsonValue),
          dedupKey: draft.dedupKey,
          seq,
          createdAt: now,
          expiresAt: expiresAtFor(draft.ttlSeconds, now),
        },
      });
      return { row: inserted, created: true };
    });
    const notification = rowView(row);
    if (created) publishNotification(bus, notification);
    return { notification, created };
  }

  /**
   * One statement: picks the targets (`targets` selects a "userId" column, distinct), bumps their
   * topics' seqs in user id order and inserts one notification per target with its new seq.
   * Returns the inserted rows' ids, users and seqs, and the last target id (for keyset chunks).
   */
  async function insertBulk(tx: Tx | PrismaClient, targets: Prisma.Sql, draft: NotificationDraft, now: Date) {
    const expiresAt = expiresAtFor(draft.ttlSeconds, now);
    const data = draft.data === null ? null : JSON.stringify(draft.data);
    return tx.$queryRaw<{ id: string; userId: string; seq: number }[]>`
      WITH targets AS (${targets}),
      seqs AS (
        INSERT INTO "TopicSequence" ("topic", "seq", "updatedAt")
        SELECT ${TOPIC_PREFIX} || t."userId", 1, ${now}::timestamp(3) FROM targets t ORDER BY t."userId" COLLATE "C"
        ON CONFLICT ("topic") DO UPDATE SET "seq" = "TopicSequence"."seq" + 1, "updatedAt" = EXCLUDED."updatedAt"
        RETURNING "topic", "seq"
      )
      INSERT INTO "Notification" ("id", "userId", "type", "title", "body", "priority", "data", "dedupKey", "seq", "createdAt", "expiresAt")
      SELECT gen_random_uuid()::text, substr(s."topic", ${TOPIC_PREFIX.length + 1}), ${draft.type}, ${draft.title}, ${draft.body}::text,
             ${draft.priority}::"NotificationPriority", ${data}::jsonb, ${draft.dedupKey}::text, s."seq", ${now}::timestamp(3),
             ${expiresAt}::timestamp(3)
      FROM seqs s
      RETURNING "id", "userId", "seq"`;
  }

  /** Publishes the rows of a bulk send to the users somebody listens for, in batches. */
  async function publishBulk(
    rows: readonly { id: string; userId: string; seq: number }[],
    draft: NotificationDraft,
    now: Date,
  ): Promise<number> {
    if (rows.length === 0) return 0;
    const listening = await audience.listening(rows.map((r) => r.userId));
    let published = 0;
    const createdAt = now.toISOString();
    const expiresAt = expiresAtFor(draft.ttlSeconds, now)?.toISOString() ?? null;
    for (const row of rows) {
      if (!listening.has(row.userId)) continue;
      const view: NotificationView = {
        id: row.id,
        userId: row.userId,
        type: draft.type,
        title: draft.title,
        body: draft.body,
        priority: draft.priority,
        data: draft.data,
        seq: Number(row.seq),
        createdAt,
        readAt: null,
        expiresAt,
      };
      bus.publish('notifications', row.userId, toEvent(view));
      published += 1;
      if (published % publishBatch === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    return published;
  }

  /** Bulk send to `userIds` (existing, not disabled); dedupKey honoured per user. Returns how many were created. */
  async function notifyMany(userIds: readonly string[], input: NotifyInput): Promise<number> {
    const draft = validateNotify(input);
    const ids = [...new Set(userIds)].sort();
    let total = 0;
    for (let i = 0; i < ids.length; i += bulkChunk) {
      const chunk = ids.slice(i, i + bulkChunk);
      const now = clock();
      const rows = await prisma.$transaction(async (tx) => {
        const dedup =
          draft.dedupKey === null
            ? Prisma.empty
            : Prisma.sql`AND NOT EXISTS (
                SELECT 1 FROM "Notification" n WHERE n."userId" = u."id" AND n."dedupKey" = ${draft.dedupKey}
                AND (n."expiresAt" IS NULL OR n."expiresAt" > ${now}::timestamp(3)))`;
        if (draft.dedupKey !== null) {
          await tx.$executeRaw`
            SELECT pg_advisory_xact_lock(hashtext(x.id), hashtext(${draft.dedupKey}))
            FROM (SELECT unnest(${chunk}::text[]) AS id ORDER BY 1) x`;
        }
        return insertBulk(
          tx,
          Prisma.sql`SELECT u."id" AS "userId" FROM "User" u
            WHERE u."id" = ANY(${chunk}::text[]) AND u."disabledAt" IS NULL ${dedup}`,
          draft,
          now,
        );
      });
      total += rows.length;
      await publishBulk(rows, draft, now);
    }
    return total;
  }

  /**
   * To every (not disabled) user, in keyset chunks of `bulkChunk` users: one statement each (its
   * own transaction), so no lock is held long and memory stays bounded whatever the audience.
   */
  async function announce(input: AnnounceInput): Promise<number> {
    const draft = validateNotify({ ...input, type: ANNOUNCEMENT_TYPE });
    let after = '';
    let total = 0;
    for (;;) {
      const now = clock();
      const rows = await insertBulk(
        prisma,
        Prisma.sql`SELECT u."id" AS "userId" FROM "User" u
          WHERE u."disabledAt" IS NULL AND u."id" COLLATE "C" > ${after}
          ORDER BY u."id" COLLATE "C" LIMIT ${bulkChunk}`,
        draft,
        now,
      );
      total += rows.length;
      await publishBulk(rows, draft, now);
      if (rows.length < bulkChunk) return total;
      after = rows.reduce(
        (max, r) => (Buffer.compare(Buffer.from(r.userId), Buffer.from(max)) > 0 ? r.userId : max),
        after,
      );
    }
  }

  // ------------------------------------------------------------------------------ backlog

  async function backlogPageAfter(
    db: Tx | PrismaClient,
    userId: string,
    maxSeq: number,
    after: NotificationView | null,
  ): Promise<NotificationView[]> {
    const now = clock();
    const keyset = after
      ? Prisma.sql`AND ("priority" < ${after.priority}::"NotificationPriority"
          OR ("priority" = ${after.priority}::"NotificationPriority"
              AND ("createdAt", "seq") > (${new Date(after.createdAt)}::timestamp(3), ${after.seq}::int)))`
      : Prisma.empty;
    const rows = await db.$queryRaw<NotificationRow[]>`
      SELECT ${SELECT_COLUMNS} FROM "Notification"
      WHERE "userId" = ${userId} AND "readAt" IS NULL AND ("expiresAt" IS NULL OR "expiresAt" > ${now}::timestamp(3))
        AND "seq" <= ${maxSeq}::int ${keyset}
      ORDER BY "Notification"."priority" DESC, "Notification"."createdAt" ASC, "Notification"."seq" ASC
      LIMIT ${backlogPage}::int`;
    return rows.map(rowView);
  }

  return {
    /** Server-side: notifies one user (domain events). Validates like sendNotification. */
    async notify(userId: string, input: NotifyInput): Promise<NotifyResult> {
      return insertOne(userId, validateNotify(input));
    },

    notifyMany,

    /** ADMIN sendNotification. */
    async send(input: SendNotificationInput): Promise<NotificationView> {
      const draft = validateNotify(input);
      const user = await prisma.user.findUnique({ where: { id: input.userId }, select: { id: true } });
      if (!user) throw notFound('User', input.userId);
      return (await insertOne(input.userId, draft)).notification;
    },

    announce,

    /** The viewer's notifications, newest first, expired ones excluded. */
    async list(
      viewer: Viewer,
      opts: { unreadOnly?: boolean | null; first?: number | null },
    ): Promise<NotificationView[]> {
      const take = listLimit(opts.first);
      const now = clock();
      const rows = await prisma.notification.findMany({
        where: {
          userId: viewer.id,
          ...(opts.unreadOnly ? { readAt: null } : {}),
          OR: [{ expiresAt: null }, { expiresAt: { gt: now } }],
        },
        orderBy: [{ createdAt: 'desc' }, { seq: 'desc' }],
        take,
      });
      return rows.map(toView);
    },

    /** Marks the viewer's own unread notifications among `ids` read; returns how many changed. */
    async markRead(viewer: Viewer, ids: readonly string[]): Promise<number> {
      const unique = validateIds(ids);
      if (unique.length === 0) return 0;
      const { count } = await prisma.notification.updateMany({
        where: { id: { in: unique }, userId: viewer.id, readAt: null },
        data: { readAt: clock() },
      });
      return count;
    },

    /**
     * notificationAdded. Without afterSeq: the viewer's unread, unexpired backlog (priority, then
     * age), then live notifications. With afterSeq: every unexpired one with a greater seq, read or
     * not, in seq order (RESYNC_REQUIRED when afterSeq is ahead), then live ones. No gap, no
     * duplicate. Resolves once the subscription is live.
     */
    async subscribe(viewer: Viewer, afterSeq?: number | null): Promise<AsyncIterableIterator<NotificationEvent>> {
      const userId = viewer.id;
      const topic = notificationsTopic(userId);
      // Counted as listening before anything is read, so a bulk send never skips this subscriber.
      const release = audience.track(userId);
      const live = (after: number | null | undefined, initial?: TopicSubscription<NotificationEvent>) =>
        resumableStream({
          initial,
          subscribe: () => bus.subscribe('notifications', userId),
          history: history(userId),
          afterSeq: after,
          gapWaitMs,
          skip: (event) => !isLive(event.data.expiresAt, clock()),
          onFinish: release,
        });
      if (afterSeq !== null && afterSeq !== undefined) return live(afterSeq);
      const subscription = bus.subscribe('notifications', userId);
      try {
        await subscription.ready;
      } catch (error) {
        subscription.close();
        release();
        throw error;
      }
      return backlogThenLive({
        pageSize: backlogPage,
        start: () =>
          prisma.$transaction(async (tx) => {
            // The row exists (and is locked FOR SHARE) before the backlog is read: an insert
            // for this user waits, so the backlog holds exactly the seqs up to `seq`.
            await ensureTopic(tx, topic);
            const seq = await currentSeq(tx, topic);
            const page = await backlogPageAfter(tx, userId, seq, null);
            return { seq, page: page.map(toEvent) };
          }),
        nextPage: async (last, seq) => (await backlogPageAfter(prisma, userId, seq, last.data)).map(toEvent),
        live: (seq) => live(seq, subscription),
        abandon: () => {
          subscription.close();
          release();
        },
      });
    },

    /** notificationEvents: the polling counterpart of notificationAdded with afterSeq (expired ones skipped). */
    async events(
      viewer: Viewer,
      args: { afterSeq?: number | null; first?: number | null },
    ): Promise<EventPage<NotificationView>> {
      return readEventPage(history(viewer.id), args, (event) => !isLive(event.data.expiresAt, clock()));
    },
  };

  /** The history of `notifications:<userId>` is the Notification table itself (seq = topic seq). */
  function history(userId: string): TopicHistory<NotificationView> {
    const topic = notificationsTopic(userId);
    return {
      async read(afterSeq, upTo, limit) {
        const rows = await prisma.$queryRaw<NotificationRow[]>`
          SELECT ${SELECT_COLUMNS} FROM "Notification"
          WHERE "userId" = ${userId} AND "seq" > ${afterSeq}::int AND "seq" <= ${upTo}::int
          ORDER BY "seq" ASC
          LIMIT ${limit}::int`;
        return rows.map((row) => toEvent(rowView(row)));
      },
      latest: () => latestSeq(prisma, topic),
    };
  }
}

export type NotificationsService = ReturnType<typeof createNotificationsService>;
