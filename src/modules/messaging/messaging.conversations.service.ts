/**
 * Conversations and their membership: create (direct or group), read, add, remove, leave. A
 * membership change locks the conversation's messages topic FOR SHARE first (messaging.service.ts
 * explains the lock order) and ends a removed participant's streams.
 */
import { randomUUID } from 'node:crypto';
import { Role } from '../../generated/prisma/enums.js';
import { badInput } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';
import { USER_ACCESS_ALL, userAccessEvent } from '../auth/auth.events.js';
import { currentSeq, ensureTopic, nextSeq } from '../../realtime/sequence.js';
import {
  accessTopic,
  messagesTopic,
  sequenced,
  stamp,
  type ConversationAccessData,
  type ConversationAccessEvent,
} from './messaging.events.js';
import { userView, type UserView } from '../users/users.service.js';
import {
  directConversationFixed,
  notModerator,
  notParticipant,
  tooManyParticipants,
  unknownUser,
} from './messaging.errors.js';
import { MAX_PARTICIPANTS, planConversation, type NamedParticipant } from './messaging.rules.js';
import { PARTICIPANTS_INCLUDE, toConversationView, type MessagingCore, type Tx } from './messaging.queries.js';
import type { ConversationView } from './messaging.queries.js';

export function createConversationOperations(core: MessagingCore) {
  const { prisma, bus, isParticipant, requireParticipant, load, unreadCounts, clearTyping } = core;

  /** The first of `named` that is not a user, as BAD_USER_INPUT naming `<field>[index]`. */
  async function requireUsers(named: readonly NamedParticipant[], field: string): Promise<void> {
    const ids = named.map((n) => n.id);
    const found = new Set(
      (await prisma.user.findMany({ where: { id: { in: ids } }, select: { id: true } })).map((u) => u.id),
    );
    const missing = named.find((n) => !found.has(n.id));
    if (missing) throw unknownUser(`${field}[${missing.index}]`, missing.id);
  }

  /**
   * Locks for a membership change: waits for in-flight sends (and holds new ones off), then the
   * conversation row. FORBIDDEN when the conversation does not exist.
   */
  async function lockMembership(
    tx: Tx,
    conversationId: string,
  ): Promise<{ messagesSeq: number; createdById: string; isDirect: boolean }> {
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

  async function removeMember(
    viewer: Viewer,
    conversationId: string,
    userId: string,
  ): Promise<{ reason: 'REMOVED' | 'LEFT' }> {
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
      const userEvent = await userAccessEvent(tx, userId, {
        kind: 'accessLost',
        resource: `conversation:${conversationId}`,
      });
      return { accessSeq, userEvent, removed: userView(member.user, userId) };
    });
    const reason = leaving ? 'LEFT' : 'REMOVED';
    bus.publish('user', USER_ACCESS_ALL, { ...userEvent, publishedAt: new Date().toISOString() });
    await publishAccessLost({ conversationId, userIds: [userId], reason }, accessSeq, [removed]);
    return { reason };
  }

  return {
    /**
     * Creates a conversation with the viewer in it. One other participant and no title: the pair's
     * direct conversation (the existing one when there is one). Otherwise a group (2..100).
     */
    async createConversation(
      viewer: Viewer,
      participantIds: readonly string[],
      title?: string | null,
    ): Promise<ConversationView> {
      const plan = planConversation(viewer.id, participantIds, title);
      if (plan.kind === 'direct') {
        await requireUsers([plan.other], 'participantIds');
        const existing = await prisma.conversation.findUnique({
          where: { directKey: plan.directKey },
          include: PARTICIPANTS_INCLUDE,
        });
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
        const row = await prisma.conversation.findUnique({
          where: { directKey: plan.directKey },
          include: PARTICIPANTS_INCLUDE,
        });
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
            participants: {
              create: [viewer.id, ...plan.others.map((o) => o.id)].map((userId) => ({ userId, joinedAt: now })),
            },
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

    /** Adds users to a group (any participant may). Already-present users are ignored. */
    async addParticipants(
      viewer: Viewer,
      conversationId: string,
      userIds: readonly string[],
    ): Promise<ConversationView> {
      if (userIds.length === 0) throw badInput('userIds', 'Name at least one user to add');
      const named = [...new Map(userIds.map((id, index) => [id, { id, index }] as const)).values()];
      await requireUsers(named, 'userIds');
      await prisma.$transaction(async (tx) => {
        const { messagesSeq, isDirect } = await lockMembership(tx, conversationId);
        await requireParticipant(tx, conversationId, viewer.id);
        if (isDirect) throw directConversationFixed(conversationId);
        const present = new Set(
          (await tx.conversationParticipant.findMany({ where: { conversationId }, select: { userId: true } })).map(
            (p) => p.userId,
          ),
        );
        const added = named.filter((n) => !present.has(n.id));
        if (present.size + added.length > MAX_PARTICIPANTS) throw tooManyParticipants('userIds', MAX_PARTICIPANTS);
        if (added.length === 0) return;
        // Newcomers see the history but start with nothing unread.
        const latest =
          messagesSeq > 0
            ? await tx.message.findUnique({
                where: { conversationId_seq: { conversationId, seq: messagesSeq } },
                select: { id: true },
              })
            : null;
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
  };
}
