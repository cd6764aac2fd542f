/**
 * Messaging: direct and group conversations, messages in commit order, read receipts, typing
 * indicators, and membership changes that end the removed participants' streams.
 *
 * Authorization: participants only, checked here for every query, mutation and subscription.
 * A conversation that does not exist answers exactly like one the viewer is not in (FORBIDDEN),
 * so nobody can probe which ids exist. ADMINs may additionally remove participants of any group.
 *
 * Ordering and locks (always in this order, so no two transactions wait on each other in a cycle):
 * TopicSequence `messages:<id>` → Conversation row → ConversationParticipant rows → other topics.
 * - sendMessage takes `nextSeq(messages:<id>)` first: that row lock serialises the conversation's
 *   commits on every instance, so a message's seq is its commit position. Under the lock it reads
 *   the participants (the sender must be one; they are the event's recipients) and checks the
 *   clientMessageId, so a resend never consumes a seq: seqs are 1, 2, 3, … without gaps.
 * - Membership changes (add, remove, leave) read `messages:<id>` FOR SHARE first: they wait for
 *   in-flight sends, and sends wait for them, so every message's recipient list is exact.
 * - Subscribing reads the access topic's seq, then checks participation, then the stream's start
 *   seq: a removal that commits after the check is always seen by the stream.
 */
import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js';
import { Role } from '../../generated/prisma/enums.js';
import { badInput } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';
import { userAccessEvent } from '../auth/auth.events.js';
import type { EventBus, TopicSubscription } from '../../realtime/event-bus.js';
import { currentSeq, ensureTopic, nextSeq } from '../../realtime/sequence.js';
import { appendToLog, eventLogHistory, latestSeq } from '../../realtime/event-log.js';
import { readEventPage, resumableStream, type EventPage, type TopicHistory } from '../../realtime/resume.js';
import type { RealtimeEvent, TopicMap } from '../../realtime/topics.js';
import {
  accessTopic,
  messagesTopic,
  readReceiptsTopic,
  sequenced,
  stamp,
  typingTopic,
  userView,
  type ConversationAccessData,
  type ConversationAccessEvent,
  type MessageEvent,
  type MessageEventData,
  type MessageView,
  type ReadReceiptEvent,
  type ReadReceiptView,
  type TypingEvent,
  type UserView,
} from './messaging.events.js';
import {
  clientMessageIdReused,
  directConversationFixed,
  messageNotInConversation,
  notModerator,
  notParticipant,
  tooManyParticipants,
  unknownUser,
} from './messaging.errors.js';
import {
  MAX_PARTICIPANTS,
  pageOldestFirst,
  pageSize,
  planConversation,
  validateBody,
  validateClientMessageId,
  type NamedParticipant,
} from './messaging.rules.js';
import { untilAccessLost, type AccessLost, type UntilAccessLostOptions } from './messaging.stream.js';
import type { TypingChange, TypingStore } from './messaging.typing.store.js';
import type { DomainEvents } from '../../domain-events.js';

export interface ConversationView {
  id: string;
  title: string | null;
  isDirect: boolean;
  createdById: string;
  createdAt: Date;
  lastMessageAt: Date | null;
  /** In the order they joined. */
  participants: UserView[];
  /** Participants' read positions (those who have read anything). */
  readReceipts: ReadReceiptView[];
  /** The viewer's unread count, when the loader already computed it. */
  unreadCount?: number;
}

export interface SendMessageInput {
  conversationId: string;
  body: string;
  clientMessageId?: string | null;
}

export interface MessagingServiceDeps {
  prisma: PrismaClient;
  bus: EventBus;
  typing: TypingStore;
  /** How long a messageAdded/readReceiptUpdated subscriber waits on the bus for a missing seq before reading it from the history. */
  gapTimeoutMs?: number;
  /** RESUME_WINDOW_SECONDS: how long read receipts are kept for resuming (messages are their own history). */
  resumeWindowSeconds?: number;
  /**
   * Where every committed message (not an idempotent resend) is announced, with the participants
   * other than the author ('message.committed': notifications).
   */
  events?: Pick<DomainEvents, 'emit'>;
  onError?: (error: unknown, context: string) => void;
}

type Tx = Prisma.TransactionClient;
type Db = PrismaClient | Tx;

const PARTICIPANTS_INCLUDE = {
  participants: {
    include: { user: { select: { id: true, name: true, role: true } } },
    orderBy: [{ joinedAt: 'asc' }, { userId: 'asc' }],
  },
} as const satisfies Prisma.ConversationInclude;
type ConversationRow = Prisma.ConversationGetPayload<{ include: typeof PARTICIPANTS_INCLUDE }>;

const MESSAGE_INCLUDE = { author: { select: { id: true, name: true, role: true } } } as const;
type MessageRow = Prisma.MessageGetPayload<{ include: typeof MESSAGE_INCLUDE }>;

/** Thrown inside sendMessage's transaction to roll it back (no seq consumed) on a resend. */
class DuplicateMessage extends Error {}

function toConversationView(row: ConversationRow): ConversationView {
  const readReceipts: ReadReceiptView[] = [];
  for (const p of row.participants) {
    if (p.lastReadMessageId !== null && p.lastReadAt !== null) {
      readReceipts.push({
        conversationId: row.id,
        user: userView(p.user, p.userId),
        lastReadMessageId: p.lastReadMessageId,
        lastReadSeq: p.lastReadSeq,
        readAt: p.lastReadAt.toISOString(),
      });
    }
  }
  return {
    id: row.id,
    title: row.title,
    isDirect: row.directKey !== null,
    createdById: row.createdById,
    createdAt: row.createdAt,
    lastMessageAt: row.lastMessageAt,
    participants: row.participants.map((p) => userView(p.user, p.userId)),
    readReceipts,
  };
}

export const toMessageView = (row: MessageRow): MessageView => ({
  id: row.id,
  conversationId: row.conversationId,
  author: userView(row.author, row.authorId),
  body: row.body,
  clientMessageId: row.clientMessageId,
  seq: row.seq,
  createdAt: row.createdAt.toISOString(),
});

export function createMessagingService(deps: MessagingServiceDeps) {
  const { prisma, bus, typing } = deps;
  const gapWaitMs = deps.gapTimeoutMs ?? 150;
  const onError = deps.onError ?? (() => undefined);

  // ------------------------------------------------------------------------------ helpers

  async function isParticipant(db: Db, conversationId: string, userId: string): Promise<boolean> {
    const row = await db.conversationParticipant.findUnique({
      where: { conversationId_userId: { conversationId, userId } },
      select: { userId: true },
    });
    return row !== null;
  }

  async function requireParticipant(db: Db, conversationId: string, userId: string): Promise<void> {
    if (!(await isParticipant(db, conversationId, userId))) throw notParticipant(conversationId);
  }

  async function load(db: Db, conversationId: string): Promise<ConversationView> {
    const row = await db.conversation.findUnique({ where: { id: conversationId }, include: PARTICIPANTS_INCLUDE });
    if (!row) throw notParticipant(conversationId);
    return toConversationView(row);
  }

  /** The first of `named` that is not a user, as BAD_USER_INPUT naming `<field>[index]`. */
  async function requireUsers(named: readonly NamedParticipant[], field: string): Promise<void> {
    const ids = named.map((n) => n.id);
    const found = new Set((await prisma.user.findMany({ where: { id: { in: ids } }, select: { id: true } })).map((u) => u.id));
    const missing = named.find((n) => !found.has(n.id));
    if (missing) throw unknownUser(`${field}[${missing.index}]`, missing.id);
  }

  /** Messages with a higher seq than the viewer's read position, not written by the viewer. */
  async function unreadCounts(userId: string, conversationIds: readonly string[]): Promise<Map<string, number>> {
    if (conversationIds.length === 0) return new Map();
    const rows = await prisma.$queryRaw<{ conversationId: string; n: number }[]>`
      SELECT p."conversationId", COUNT(m."id")::int AS n
      FROM "ConversationParticipant" p
      LEFT JOIN "Message" m ON m."conversationId" = p."conversationId" AND m."seq" > p."lastReadSeq" AND m."authorId" <> p."userId"
      WHERE p."userId" = ${userId} AND p."conversationId" = ANY(${[...conversationIds]}::text[])
      GROUP BY p."conversationId"`;
    return new Map(rows.map((r) => [r.conversationId, Number(r.n)]));
  }

  const publishTyping = (change: TypingChange, user: UserView): void => {
    const event: TypingEvent = {
      topic: typingTopic(change.conversationId),
      seq: change.seq,
      publishedAt: new Date().toISOString(),
      data: { conversationId: change.conversationId, user, isTyping: change.isTyping },
    };
    bus.publish('typing', change.conversationId, event);
  };

  /** Ends the user's typing state (if any) and tells the others. Never throws. */
  async function clearTyping(conversationId: string, user: UserView): Promise<void> {
    try {
      const change = await typing.stop(conversationId, user.id);
      if (change) publishTyping(change, user);
    } catch (error) {
      onError(error, 'clearing a typing state failed');
    }
  }

  typing.onExpired((change) => {
    void prisma.user
      .findUnique({ where: { id: change.userId }, select: { id: true, name: true, role: true } })
      .then((user) => publishTyping(change, userView(user, change.userId)))
      .catch((error) => onError(error, 'publishing a typing expiry failed'));
  });

  /**
   * Locks for a membership change: waits for in-flight sends (and holds new ones off), then the
   * conversation row. FORBIDDEN when the conversation does not exist.
   */
  async function lockMembership(tx: Tx, conversationId: string): Promise<{ messagesSeq: number; createdById: string; isDirect: boolean }> {
    const messagesSeq = await currentSeq(tx, messagesTopic(conversationId));
    const [row] = await tx.$queryRaw<{ createdById: string; directKey: string | null }[]>`
      SELECT "createdById", "directKey" FROM "Conversation" WHERE "id" = ${conversationId} FOR UPDATE`;
    if (!row) throw notParticipant(conversationId);
    return { messagesSeq, createdById: row.createdById, isDirect: row.directKey !== null };
  }

  async function publishAccessLost(data: ConversationAccessData, seq: number, users: UserView[]): Promise<void> {
    const event: ConversationAccessEvent = stamp(sequenced(accessTopic(data.conversationId), seq, data));
    bus.publish('conversationAccess', data.conversationId, event);
    await Promise.all(users.map((user) => clearTyping(data.conversationId, user)));
  }

  async function removeMember(viewer: Viewer, conversationId: string, userId: string): Promise<{ reason: 'REMOVED' | 'LEFT' }> {
    const leaving = userId === viewer.id;
    const { accessSeq, userEvent, removed } = await prisma.$transaction(async (tx) => {
      const { createdById, isDirect } = await lockMembership(tx, conversationId);
      const viewerIn = await isParticipant(tx, conversationId, viewer.id);
      const isAdmin = viewer.role === Role.ADMIN;
      if (!viewerIn && !(isAdmin && !leaving)) throw notParticipant(conversationId);
      if (!leaving && !isAdmin && createdById !== viewer.id) throw notModerator(conversationId);
      if (isDirect) throw directConversationFixed(conversationId);
      const member = await tx.conversationParticipant.findUnique({
        where: { conversationId_userId: { conversationId, userId } },
        include: { user: { select: { id: true, name: true, role: true } } },
      });
      if (!member) throw badInput('userId', `User ${userId} is not a participant of conversation ${conversationId}`);
      await tx.conversationParticipant.delete({ where: { conversationId_userId: { conversationId, userId } } });
      const accessSeq = await nextSeq(tx, accessTopic(conversationId));
      // The guards' per-user access topic too (auth.events.ts), for anything that watches it.
      const userEvent = await userAccessEvent(tx, userId, { kind: 'accessLost', resource: `conversation:${conversationId}` });
      return { accessSeq, userEvent, removed: userView(member.user, userId) };
    });
    const reason = leaving ? 'LEFT' : 'REMOVED';
    bus.publish('user', userId, { ...userEvent, publishedAt: new Date().toISOString() });
    await publishAccessLost({ conversationId, userIds: [userId], reason }, accessSeq, [removed]);
    return { reason };
  }

  // ------------------------------------------------------------------------------ service

  return {
    /**
     * Creates a conversation with the viewer in it. One other participant and no title: the pair's
     * direct conversation (the existing one when there is one). Otherwise a group (2..100).
     */
    async createConversation(viewer: Viewer, participantIds: readonly string[], title?: string | null): Promise<ConversationView> {
      const plan = planConversation(viewer.id, participantIds, title);
      if (plan.kind === 'direct') {
        await requireUsers([plan.other], 'participantIds');
        const existing = await prisma.conversation.findUnique({ where: { directKey: plan.directKey }, include: PARTICIPANTS_INCLUDE });
        if (existing) return toConversationView(existing);
        await prisma.$transaction(async (tx) => {
          const id = randomUUID();
          const now = new Date();
          // Two first messages between a pair at once: the loser waits here for the winner's
          // commit, inserts nothing, and reads the winner's conversation below.
          const inserted = await tx.$queryRaw<{ id: string }[]>`
            INSERT INTO "Conversation" ("id", "directKey", "createdById", "createdAt", "updatedAt")
            VALUES (${id}, ${plan.directKey}, ${viewer.id}, ${now}, ${now})
            ON CONFLICT ("directKey") DO NOTHING RETURNING "id"`;
          if (inserted.length === 0) return;
          await tx.conversationParticipant.createMany({
            data: [viewer.id, plan.other.id].map((userId) => ({ conversationId: id, userId, joinedAt: now })),
          });
          await ensureTopic(tx, messagesTopic(id));
        });
        const row = await prisma.conversation.findUnique({ where: { directKey: plan.directKey }, include: PARTICIPANTS_INCLUDE });
        return toConversationView(row!);
      }
      await requireUsers(plan.others, 'participantIds');
      const id = await prisma.$transaction(async (tx) => {
        const now = new Date();
        const created = await tx.conversation.create({
          data: {
            title: plan.title,
            createdById: viewer.id,
            createdAt: now,
            participants: { create: [viewer.id, ...plan.others.map((o) => o.id)].map((userId) => ({ userId, joinedAt: now })) },
          },
          select: { id: true },
        });
        await ensureTopic(tx, messagesTopic(created.id));
        return created.id;
      });
      return load(prisma, id);
    },

    /** The conversation, for a participant. */
    async conversation(viewer: Viewer, conversationId: string): Promise<ConversationView> {
      await requireParticipant(prisma, conversationId, viewer.id);
      const view = await load(prisma, conversationId);
      view.unreadCount = (await unreadCounts(viewer.id, [conversationId])).get(conversationId) ?? 0;
      return view;
    },

    /** The viewer's conversations, newest activity (last message, else creation) first. */
    async conversations(viewer: Viewer): Promise<ConversationView[]> {
      const ordered = await prisma.$queryRaw<{ id: string }[]>`
        SELECT c."id" FROM "Conversation" c
        JOIN "ConversationParticipant" p ON p."conversationId" = c."id" AND p."userId" = ${viewer.id}
        ORDER BY COALESCE(c."lastMessageAt", c."createdAt") DESC, c."id" DESC`;
      const ids = ordered.map((r) => r.id);
      if (ids.length === 0) return [];
      const [rows, unread] = await Promise.all([
        prisma.conversation.findMany({ where: { id: { in: ids } }, include: PARTICIPANTS_INCLUDE }),
        unreadCounts(viewer.id, ids),
      ]);
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.flatMap((id) => {
        const row = byId.get(id);
        if (!row) return [];
        return [{ ...toConversationView(row), unreadCount: unread.get(id) ?? 0 }];
      });
    },

    /**
     * A page of history, newest last: the `last` messages before message `before` (or the newest).
     * The caller has already authorised the viewer for this conversation.
     */
    async history(conversationId: string, args: { last?: number | null; before?: string | null }): Promise<MessageView[]> {
      const take = pageSize(args.last);
      let beforeSeq: number | undefined;
      if (args.before !== null && args.before !== undefined) {
        const cursor = await prisma.message.findUnique({ where: { id: args.before }, select: { conversationId: true, seq: true } });
        if (cursor?.conversationId !== conversationId) throw messageNotInConversation('before', args.before, conversationId);
        beforeSeq = cursor.seq;
      }
      const rows = await prisma.message.findMany({
        where: { conversationId, ...(beforeSeq !== undefined && { seq: { lt: beforeSeq } }) },
        orderBy: { seq: 'desc' },
        take,
        include: MESSAGE_INCLUDE,
      });
      return pageOldestFirst(rows).map(toMessageView);
    },

    /** The viewer's unread messages in a conversation the caller has already authorised. */
    async unreadCount(viewerId: string, conversationId: string): Promise<number> {
      return (await unreadCounts(viewerId, [conversationId])).get(conversationId) ?? 0;
    },

    /**
     * Sends a message; resending the same clientMessageId returns the first one (CONFLICT if the
     * body differs). Publishes messageAdded after the commit, clears the sender's typing.
     */
    async sendMessage(viewer: Viewer, input: SendMessageInput): Promise<MessageView> {
      const { conversationId } = input;
      const body = validateBody(input.body);
      const clientMessageId = validateClientMessageId(input.clientMessageId);
      const author = userView(viewer, viewer.id);

      const resent = async (): Promise<MessageView | null> => {
        if (clientMessageId === null) return null;
        const row = await prisma.message.findUnique({
          where: { conversationId_authorId_clientMessageId: { conversationId, authorId: viewer.id, clientMessageId } },
          include: MESSAGE_INCLUDE,
        });
        if (!row) return null;
        await requireParticipant(prisma, conversationId, viewer.id);
        if (row.body !== body) throw clientMessageIdReused(clientMessageId, row.id);
        return toMessageView(row);
      };

      const earlier = await resent();
      if (earlier) return earlier;

      let committed: MessageEventData;
      try {
        committed = await prisma.$transaction(async (tx) => {
          const topic = messagesTopic(conversationId);
          const seq = await nextSeq(tx, topic); // the conversation's commit lock, held to the end
          const participants = await tx.$queryRaw<{ userId: string }[]>`
            SELECT "userId" FROM "ConversationParticipant" WHERE "conversationId" = ${conversationId} ORDER BY "joinedAt", "userId"`;
          const recipients = participants.map((p) => p.userId);
          if (!recipients.includes(viewer.id)) throw notParticipant(conversationId);
          if (clientMessageId !== null) {
            const dup = await tx.message.findUnique({
              where: { conversationId_authorId_clientMessageId: { conversationId, authorId: viewer.id, clientMessageId } },
              select: { id: true },
            });
            if (dup) throw new DuplicateMessage();
          }
          const id = randomUUID();
          const now = new Date();
          const inserted = await tx.$queryRaw<{ id: string }[]>`
            INSERT INTO "Message" ("id", "conversationId", "authorId", "body", "clientMessageId", "seq", "createdAt")
            VALUES (${id}, ${conversationId}, ${viewer.id}, ${body}, ${clientMessageId}, ${seq}, ${now})
            ON CONFLICT ("conversationId", "authorId", "clientMessageId") DO NOTHING RETURNING "id"`;
          if (inserted.length === 0) throw new DuplicateMessage();
          await tx.$executeRaw`UPDATE "Conversation" SET "lastMessageAt" = ${now}, "updatedAt" = ${now} WHERE "id" = ${conversationId}`;
          // Writing a message reads everything before it: the author's position moves to it.
          await tx.$executeRaw`
            UPDATE "ConversationParticipant" SET "lastReadSeq" = ${seq}, "lastReadMessageId" = ${id}, "lastReadAt" = ${now}
            WHERE "conversationId" = ${conversationId} AND "userId" = ${viewer.id} AND "lastReadSeq" < ${seq}`;
          return { id, conversationId, author, body, clientMessageId, seq, createdAt: now.toISOString(), recipients };
        });
      } catch (error) {
        if (error instanceof DuplicateMessage) {
          const first = await resent();
          if (first) return first;
        }
        throw error;
      }

      const event: MessageEvent = stamp(sequenced(messagesTopic(conversationId), committed.seq, committed));
      bus.publish('messages', conversationId, event);
      const { recipients, ...message } = committed;
      await clearTyping(conversationId, author);
      deps.events?.emit('message.committed', { message, recipients: recipients.filter((id) => id !== viewer.id) });
      return message;
    },

    /**
     * Moves the viewer's read position forward to `upToMessageId` (never backwards) and tells
     * the other participants. Returns the viewer's position after the call.
     */
    async markRead(viewer: Viewer, conversationId: string, upToMessageId: string): Promise<ReadReceiptView> {
      const { receipt, event } = await prisma.$transaction(async (tx) => {
        await requireParticipant(tx, conversationId, viewer.id);
        const message = await tx.message.findUnique({ where: { id: upToMessageId }, select: { conversationId: true, seq: true } });
        if (message?.conversationId !== conversationId) {
          throw messageNotInConversation('upToMessageId', upToMessageId, conversationId);
        }
        const now = new Date();
        const moved = await tx.$queryRaw<{ n: number }[]>`
          UPDATE "ConversationParticipant" SET "lastReadSeq" = ${message.seq}, "lastReadMessageId" = ${upToMessageId}, "lastReadAt" = ${now}
          WHERE "conversationId" = ${conversationId} AND "userId" = ${viewer.id} AND "lastReadSeq" < ${message.seq}
          RETURNING 1 AS n`;
        const row = await tx.conversationParticipant.findUnique({
          where: { conversationId_userId: { conversationId, userId: viewer.id } },
        });
        if (!row) throw notParticipant(conversationId); // removed concurrently
        const receipt: ReadReceiptView = {
          conversationId,
          user: userView(viewer, viewer.id),
          lastReadMessageId: row.lastReadMessageId ?? upToMessageId,
          lastReadSeq: row.lastReadSeq,
          readAt: (row.lastReadAt ?? now).toISOString(),
        };
        if (moved.length === 0) return { receipt, event: null };
        const topic = readReceiptsTopic(conversationId);
        const event = sequenced(topic, await nextSeq(tx, topic), receipt);
        await appendToLog(tx, [event]); // the resume history, committed with the seq
        return { receipt, event };
      });
      if (event) bus.publish('readReceipts', conversationId, stamp(event));
      return receipt;
    },

    /**
     * isTyping true starts or refreshes the viewer's typing state (false: throttled, nothing
     * changed); isTyping false ends it. Returns whether the viewer's state now is `isTyping`.
     */
    async setTyping(viewer: Viewer, conversationId: string, isTyping: boolean): Promise<boolean> {
      await requireParticipant(prisma, conversationId, viewer.id);
      const user = userView(viewer, viewer.id);
      if (!isTyping) {
        const change = await typing.stop(conversationId, viewer.id);
        if (change) publishTyping(change, user);
        return true;
      }
      const result = await typing.start(conversationId, viewer.id);
      if (result.outcome === 'started') publishTyping(result.change, user);
      return result.outcome !== 'throttled';
    },

    /** Adds users to a group (any participant may). Already-present users are ignored. */
    async addParticipants(viewer: Viewer, conversationId: string, userIds: readonly string[]): Promise<ConversationView> {
      if (userIds.length === 0) throw badInput('userIds', 'Name at least one user to add');
      const named = [...new Map(userIds.map((id, index) => [id, { id, index }] as const)).values()];
      await requireUsers(named, 'userIds');
      await prisma.$transaction(async (tx) => {
        const { messagesSeq, isDirect } = await lockMembership(tx, conversationId);
        await requireParticipant(tx, conversationId, viewer.id);
        if (isDirect) throw directConversationFixed(conversationId);
        const present = new Set(
          (await tx.conversationParticipant.findMany({ where: { conversationId }, select: { userId: true } })).map((p) => p.userId),
        );
        const added = named.filter((n) => !present.has(n.id));
        if (present.size + added.length > MAX_PARTICIPANTS) throw tooManyParticipants('userIds', MAX_PARTICIPANTS);
        if (added.length === 0) return;
        // Newcomers see the history but start with nothing unread.
        const latest =
          messagesSeq > 0 ? await tx.message.findUnique({ where: { conversationId_seq: { conversationId, seq: messagesSeq } }, select: { id: true } }) : null;
        const now = new Date();
        await tx.conversationParticipant.createMany({
          data: added.map((n) => ({
            conversationId,
            userId: n.id,
            joinedAt: now,
            lastReadSeq: latest ? messagesSeq : 0,
            lastReadMessageId: latest?.id ?? null,
            lastReadAt: latest ? now : null,
          })),
        });
      });
      return load(prisma, conversationId);
    },

    /** The creator (or an ADMIN) removes a participant of a group; their streams end. */
    async removeParticipant(viewer: Viewer, conversationId: string, userId: string): Promise<ConversationView> {
      await removeMember(viewer, conversationId, userId);
      return load(prisma, conversationId);
    },

    /** The viewer leaves a group; their streams end. */
    async leave(viewer: Viewer, conversationId: string): Promise<boolean> {
      await removeMember(viewer, conversationId, viewer.id);
      return true;
    },

    /**
     * Messages in seq order, from now on or after `afterSeq` (replayed from the conversation's
     * messages: resuming works as far back as they go); ends with ACCESS_LOST when the viewer is removed.
     */
    subscribeMessages(viewer: Viewer, conversationId: string, afterSeq?: number | null): Promise<AsyncIterableIterator<MessageEvent | AccessLost>> {
      return watch(
        viewer,
        conversationId,
        'messages',
        (initial) => resumableStream({ initial, subscribe: () => bus.subscribe('messages', conversationId), history: messageHistory(conversationId), afterSeq, gapWaitMs }),
        { lostIn: (event) => !event.data.recipients.includes(viewer.id) },
      );
    },

    /** messageEvents: the polling counterpart of messageAdded (participants only). */
    async messageEvents(viewer: Viewer, conversationId: string, args: { afterSeq?: number | null; first?: number | null }): Promise<EventPage<MessageEventData>> {
      await requireParticipant(prisma, conversationId, viewer.id);
      return readEventPage(messageHistory(conversationId), args);
    },

    /** Other participants' read positions as they move, in seq order, from now on or after `afterSeq` (the viewer's own are not echoed). */
    subscribeReadReceipts(viewer: Viewer, conversationId: string, afterSeq?: number | null): Promise<AsyncIterableIterator<ReadReceiptEvent | AccessLost>> {
      return watch(
        viewer,
        conversationId,
        'readReceipts',
        (initial) =>
          resumableStream({ initial, subscribe: () => bus.subscribe('readReceipts', conversationId), history: receiptHistory(conversationId), afterSeq, gapWaitMs }),
        { skip: (event) => event.data.user.id === viewer.id },
      );
    },

    /** readReceiptEvents: the polling counterpart of readReceiptUpdated (participants only; the viewer's own skipped). */
    async readReceiptEvents(viewer: Viewer, conversationId: string, args: { afterSeq?: number | null; first?: number | null }): Promise<EventPage<ReadReceiptView>> {
      await requireParticipant(prisma, conversationId, viewer.id);
      return readEventPage(receiptHistory(conversationId), args, (event) => event.data.user.id === viewer.id);
    },

    /** Other participants' typing changes (never the viewer's own; stale ones dropped). */
    subscribeTyping(viewer: Viewer, conversationId: string): Promise<AsyncIterableIterator<TypingEvent | AccessLost>> {
      const lastByUser = new Map<string, number>();
      return watch(viewer, conversationId, 'typing', async (subscription) => subscription, {
        skip: (event) => {
          const userId = event.data.user.id;
          if (userId === viewer.id) return true;
          const last = lastByUser.get(userId);
          if (last !== undefined && event.seq <= last) return true;
          lastByUser.set(userId, event.seq);
          return false;
        },
      });
    },

    /** Stops the typing store's timers and sweeps. */
    async close(): Promise<void> {
      await typing.close();
    },
  };

  /**
   * Subscribes to `kind` and the access topic, waits until both are live, then checks the viewer
   * (access seq first, so a removal committed after the check is always seen) and opens the
   * source stream over the subscription.
   */
  async function watch<K extends 'messages' | 'readReceipts' | 'typing'>(
    viewer: Viewer,
    conversationId: string,
    kind: K,
    source: (subscription: TopicSubscription<RealtimeEvent<TopicMap[K]>>) => Promise<AsyncIterator<RealtimeEvent<TopicMap[K]>>>,
    opts: Pick<UntilAccessLostOptions<RealtimeEvent<TopicMap[K]>>, 'lostIn' | 'skip'>,
  ): Promise<AsyncIterableIterator<RealtimeEvent<TopicMap[K]> | AccessLost>> {
    const access = bus.subscribe('conversationAccess', conversationId);
    const subscription = bus.subscribe(kind, conversationId);
    try {
      await Promise.all([access.ready, subscription.ready]);
      const accessSeq = await currentSeq(prisma, accessTopic(conversationId));
      await requireParticipant(prisma, conversationId, viewer.id);
      return untilAccessLost(await source(subscription), access, { conversationId, viewerId: viewer.id, afterSeq: accessSeq, ...opts });
    } catch (error) {
      access.close();
      subscription.close();
      throw error;
    }
  }

  /**
   * The history of `messages:<id>` is the Message table itself (a message's seq is its topic seq),
   * so resuming works as far back as the messages go. Recipients are today's participants: the
   * viewer was checked to be one when the stream started.
   */
  function messageHistory(conversationId: string): TopicHistory<MessageEventData> {
    const topic = messagesTopic(conversationId);
    return {
      async read(afterSeq, upTo, limit) {
        const rows = await prisma.message.findMany({
          where: { conversationId, seq: { gt: afterSeq, lte: upTo } },
          orderBy: { seq: 'asc' },
          take: limit,
          include: MESSAGE_INCLUDE,
        });
        if (rows.length === 0) return [];
        const participants = await prisma.conversationParticipant.findMany({ where: { conversationId }, select: { userId: true } });
        const recipients = participants.map((p) => p.userId);
        return rows.map((row) => ({ topic, seq: row.seq, publishedAt: row.createdAt.toISOString(), data: { ...toMessageView(row), recipients } }));
      },
      latest: () => latestSeq(prisma, topic),
    };
  }

  function receiptHistory(conversationId: string): TopicHistory<ReadReceiptView> {
    return eventLogHistory<ReadReceiptView>(prisma, readReceiptsTopic(conversationId), deps.resumeWindowSeconds ?? 300);
  }
}

export type MessagingService = ReturnType<typeof createMessagingService>;
