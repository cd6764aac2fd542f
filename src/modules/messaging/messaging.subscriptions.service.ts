/**
 * The conversation's subscriptions and their polling counterparts: messages, read receipts and
 * typing, each resumable where it has a history, each ending with ACCESS_LOST (FORBIDDEN) when the
 * viewer is removed (untilAccessLost, messaging.stream.ts).
 */
import type { Viewer } from '../../guards/auth.js';
import type { TopicSubscription } from '../../realtime/event-bus.js';
import { currentSeq } from '../../realtime/sequence.js';
import { eventLogHistory, latestSeq } from '../../realtime/event-log.js';
import { readEventPage, resumableStream, type EventPage, type TopicHistory } from '../../realtime/resume.js';
import type { RealtimeEvent, TopicMap } from '../../realtime/topics.js';
import {
  accessTopic,
  messagesTopic,
  readReceiptsTopic,
  type MessageEvent,
  type MessageEventData,
  type ReadReceiptEvent,
  type ReadReceiptView,
  type TypingEvent,
} from './messaging.events.js';
import { untilAccessLost, type AccessLost, type UntilAccessLostOptions } from './messaging.stream.js';
import { MESSAGE_INCLUDE, toMessageView, type MessagingCore } from './messaging.queries.js';

export function createMessagingStreams(core: MessagingCore) {
  const { prisma, bus, requireParticipant, deps } = core;
  const gapWaitMs = deps.gapTimeoutMs ?? 150;

  return {
    /**
     * Messages in seq order, from now on or after `afterSeq` (replayed from the conversation's
     * messages: resuming works as far back as they go); ends with ACCESS_LOST when the viewer is removed.
     */
    subscribeMessages(
      viewer: Viewer,
      conversationId: string,
      afterSeq?: number | null,
    ): Promise<AsyncIterableIterator<MessageEvent | AccessLost>> {
      return watch(
        viewer,
        conversationId,
        'messages',
        (initial) =>
          resumableStream({
            initial,
            subscribe: () => bus.subscribe('messages', conversationId),
            history: messageHistory(conversationId),
            afterSeq,
            gapWaitMs,
          }),
        { lostIn: (event) => !event.data.recipients.includes(viewer.id) },
      );
    },

    /** messageEvents: the polling counterpart of messageAdded (participants only). */
    async messageEvents(
      viewer: Viewer,
      conversationId: string,
      args: { afterSeq?: number | null; first?: number | null },
    ): Promise<EventPage<MessageEventData>> {
      await requireParticipant(prisma, conversationId, viewer.id);
      return readEventPage(messageHistory(conversationId), args);
    },

    /** Other participants' read positions as they move, in seq order, from now on or after `afterSeq` (the viewer's own are not echoed). */
    subscribeReadReceipts(
      viewer: Viewer,
      conversationId: string,
      afterSeq?: number | null,
    ): Promise<AsyncIterableIterator<ReadReceiptEvent | AccessLost>> {
      return watch(
        viewer,
        conversationId,
        'readReceipts',
        (initial) =>
          resumableStream({
            initial,
            subscribe: () => bus.subscribe('readReceipts', conversationId),
            history: receiptHistory(conversationId),
            afterSeq,
            gapWaitMs,
          }),
        { skip: (event) => event.data.user.id === viewer.id },
      );
    },

    /** readReceiptEvents: the polling counterpart of readReceiptUpdated (participants only; the viewer's own skipped). */
    async readReceiptEvents(
      viewer: Viewer,
      conversationId: string,
      args: { afterSeq?: number | null; first?: number | null },
    ): Promise<EventPage<ReadReceiptView>> {
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
    source: (
      subscription: TopicSubscription<RealtimeEvent<TopicMap[K]>>,
    ) => Promise<AsyncIterator<RealtimeEvent<TopicMap[K]>>>,
    opts: Pick<UntilAccessLostOptions<RealtimeEvent<TopicMap[K]>>, 'lostIn' | 'skip'>,
  ): Promise<AsyncIterableIterator<RealtimeEvent<TopicMap[K]> | AccessLost>> {
    const access = bus.subscribe('conversationAccess', conversationId);
    const subscription = bus.subscribe(kind, conversationId);
    try {
      await Promise.all([access.ready, subscription.ready]);
      const accessSeq = await currentSeq(prisma, accessTopic(conversationId));
      await requireParticipant(prisma, conversationId, viewer.id);
      return untilAccessLost(await source(subscription), access, {
        conversationId,
        viewerId: viewer.id,
        afterSeq: accessSeq,
        ...opts,
      });
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
        const participants = await prisma.conversationParticipant.findMany({
          where: { conversationId },
          select: { userId: true },
        });
        const recipients = participants.map((p) => p.userId);
        return rows.map((row) => ({
          topic,
          seq: row.seq,
          publishedAt: row.createdAt.toISOString(),
          data: { ...toMessageView(row), recipients },
        }));
      },
      latest: () => latestSeq(prisma, topic),
    };
  }

  function receiptHistory(conversationId: string): TopicHistory<ReadReceiptView> {
    return eventLogHistory<ReadReceiptView>(prisma, readReceiptsTopic(conversationId), deps.resumeWindowSeconds ?? 300);
  }
}
