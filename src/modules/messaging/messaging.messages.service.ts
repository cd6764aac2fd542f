/**
 * Messages, read receipts and typing: history pages, unread counts, send (seq = commit position,
 * idempotent by clientMessageId), mark read, set typing.
 */
import { randomUUID } from 'node:crypto';
import type { Viewer } from '../../guards/auth.js';
import { nextSeq } from '../../realtime/sequence.js';
import { appendToLog } from '../../realtime/event-log.js';
import {
  messagesTopic,
  readReceiptsTopic,
  sequenced,
  stamp,
  type MessageEvent,
  type MessageEventData,
  type MessageView,
  type ReadReceiptView,
} from './messaging.events.js';
import type { OutboxRecord } from '../../domain-events.js';
import { userView } from '../users/users.service.js';
import { clientMessageIdReused, messageNotInConversation, notParticipant } from './messaging.errors.js';
import { pageOldestFirst, pageSize, validateBody, validateClientMessageId } from './messaging.rules.js';
import { MESSAGE_INCLUDE, toMessageView, type MessagingCore } from './messaging.queries.js';
import type { SendMessageInput } from './messaging.queries.js';

/** Thrown inside sendMessage's transaction to roll it back (no seq consumed) on a resend. */
class DuplicateMessage extends Error {}

export function createMessageOperations(core: MessagingCore) {
  const { prisma, bus, typing, requireParticipant, unreadCounts, publishTyping, clearTyping, deps } = core;

  return {
    /**
     * A page of history, newest last: the `last` messages before message `before` (or the newest).
     * The caller has already authorised the viewer for this conversation.
     */
    async history(
      conversationId: string,
      args: { last?: number | null; before?: string | null },
    ): Promise<MessageView[]> {
      const take = pageSize(args.last);
      let beforeSeq: number | undefined;
      if (args.before !== null && args.before !== undefined) {
        const cursor = await prisma.message.findUnique({
          where: { id: args.before },
          select: { conversationId: true, seq: true },
        });
        if (cursor?.conversationId !== conversationId)
          throw messageNotInConversation('before', args.before, conversationId);
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
      let outboxed: OutboxRecord | undefined;
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
              where: {
                conversationId_authorId_clientMessageId: { conversationId, authorId: viewer.id, clientMessageId },
              },
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
          const data = { id, conversationId, author, body, clientMessageId, seq, createdAt: now.toISOString() };
          outboxed = await deps.events?.record(tx, 'message.committed', {
            message: data,
            recipients: recipients.filter((userId) => userId !== viewer.id),
          });
          return { ...data, recipients };
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
      if (outboxed) deps.events?.committed(outboxed);
      return message;
    },

    /**
     * Moves the viewer's read position forward to `upToMessageId` (never backwards) and tells
     * the other participants. Returns the viewer's position after the call.
     */
    async markRead(viewer: Viewer, conversationId: string, upToMessageId: string): Promise<ReadReceiptView> {
      const { receipt, event } = await prisma.$transaction(async (tx) => {
        await requireParticipant(tx, conversationId, viewer.id);
        const message = await tx.message.findUnique({
          where: { id: upToMessageId },
          select: { conversationId: true, seq: true },
        });
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
  };
}
