/**
 * What the messaging module publishes, and the payloads' shapes. Four entity-scoped topics per
 * conversation:
 *
 * - `messages:<conversationId>`: one event per committed message; `seq` is the message's seq,
 *   taken with nextSeq in the sending transaction, so seq order is commit order on every
 *   instance. The event also names the conversation's participants at commit (`recipients`):
 *   a subscriber that is not among them has lost access and its stream ends.
 * - `readReceipts:<conversationId>`: one event per read position that moved forward
 *   (markConversationRead), seq from nextSeq in the same transaction.
 * - `typing:<conversationId>`: ephemeral typing changes (never in Postgres). `seq` comes from the
 *   TypingStore (per conversation, increasing in the order the store applied the changes), so a
 *   subscriber drops a change older than one it already delivered for the same user.
 * - `conversationAccess:<conversationId>`: participants who lost access (removed, left); every
 *   viewer-bound stream of the conversation watches it and ends with FORBIDDEN for them. seq from
 *   nextSeq in the membership transaction.
 *
 * Payloads cross Redis as JSON: plain objects, times as ISO strings.
 */
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';

import type { UserView } from '../users/users.service.js';

export interface MessageView {
  id: string;
  conversationId: string;
  author: UserView;
  body: string;
  clientMessageId: string | null;
  /** Position in the conversation: 1, 2, 3, … in commit order. */
  seq: number;
  createdAt: string;
}

export interface MessageEventData extends MessageView {
  /** Every participant at commit (the author included). */
  recipients: string[];
}

export interface ReadReceiptView {
  conversationId: string;
  user: UserView;
  lastReadMessageId: string;
  lastReadSeq: number;
  readAt: string;
}

export interface TypingView {
  conversationId: string;
  user: UserView;
  isTyping: boolean;
}

export interface ConversationAccessData {
  conversationId: string;
  /** Users who are no longer participants. */
  userIds: string[];
  reason: 'REMOVED' | 'LEFT';
}

export type MessageEvent = RealtimeEvent<MessageEventData>;
export type ReadReceiptEvent = RealtimeEvent<ReadReceiptView>;
export type TypingEvent = RealtimeEvent<TypingView>;
export type ConversationAccessEvent = RealtimeEvent<ConversationAccessData>;

export const messagesTopic = (conversationId: string): string => topicName('messages', conversationId);
export const readReceiptsTopic = (conversationId: string): string => topicName('readReceipts', conversationId);
export const typingTopic = (conversationId: string): string => topicName('typing', conversationId);
export const accessTopic = (conversationId: string): string => topicName('conversationAccess', conversationId);

/** An event ready to publish once its transaction committed. */
export const sequenced = <T>(topic: string, seq: number, data: T): RealtimeEvent<T> => ({
  topic,
  seq,
  publishedAt: '',
  data,
});

export const stamp = <T>(event: RealtimeEvent<T>): RealtimeEvent<T> => ({
  ...event,
  publishedAt: new Date().toISOString(),
});

declare module '../../realtime/topics.js' {
  interface TopicMap {
    messages: MessageEventData;
    readReceipts: ReadReceiptView;
    typing: TypingView;
    conversationAccess: ConversationAccessData;
  }
}
