/**
 * What every part of messaging shares: the row shapes and their views, participation checks and
 * unread counts (read model queries), and typing's publish/clear, built once per service by
 * createMessagingCore. The operations are in messaging.conversations.service.ts,
 * messaging.messages.service.ts and messaging.subscriptions.service.ts; messaging.service.ts composes them.
 */
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { typingTopic, type MessageView, type ReadReceiptView, type TypingEvent } from './messaging.events.js';
import { userView, type UserView } from '../users/users.service.js';
import { notParticipant } from './messaging.errors.js';
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
   * other than the author ('message.committed': notifications), recorded in the message's
   * transaction (the outbox) and delivered after the commit.
   */
  events?: Pick<DomainEvents, 'record' | 'committed'>;
  onError?: (error: unknown, context: string) => void;
}

export type Tx = Prisma.TransactionClient;
export type Db = PrismaClient | Tx;

export const PARTICIPANTS_INCLUDE = {
  participants: {
    include: { user: { select: { id: true, name: true, role: true } } },
    orderBy: [{ joinedAt: 'asc' }, { userId: 'asc' }],
  },
} as const satisfies Prisma.ConversationInclude;
type ConversationRow = Prisma.ConversationGetPayload<{ include: typeof PARTICIPANTS_INCLUDE }>;

export const MESSAGE_INCLUDE = { author: { select: { id: true, name: true, role: true } } } as const;
type MessageRow = Prisma.MessageGetPayload<{ include: typeof MESSAGE_INCLUDE }>;

export function toConversationView(row: ConversationRow): ConversationView {
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

export interface MessagingCore {
  deps: MessagingServiceDeps;
  prisma: PrismaClient;
  bus: EventBus;
  typing: TypingStore;
  onError: (error: unknown, context: string) => void;
  isParticipant(db: Db, conversationId: string, userId: string): Promise<boolean>;
  requireParticipant(db: Db, conversationId: string, userId: string): Promise<void>;
  load(db: Db, conversationId: string): Promise<ConversationView>;
  unreadCounts(userId: string, conversationIds: readonly string[]): Promise<Map<string, number>>;
  publishTyping(change: TypingChange, user: UserView): void;
  /** Ends the user's typing state (if any) and tells the others. Never throws. */
  clearTyping(conversationId: string, user: UserView): Promise<void>;
}

export function createMessagingCore(deps: MessagingServiceDeps): MessagingCore {
  const { prisma, bus, typing } = deps;
  const onError = deps.onError ?? (() => undefined);

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

  return {
    deps,
    prisma,
    bus,
    typing,
    onError,
    isParticipant,
    requireParticipant,
    load,
    unreadCounts,
    publishTyping,
    clearTyping,
  };
}
