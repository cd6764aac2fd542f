/**
 * The one typed map of realtime topics. Every topic is entity-scoped (`<kind>:<entityId>`), so an
 * instance only receives events for entities somebody on it watches; a global topic filtered
 * everywhere only where the events are rare and every instance needs them (`user:all`,
 * `fraudAlert:all`). Every event carries a per-topic `seq` (strictly increasing, assigned in
 * the database transaction that produced the event's state) so subscribers can drop stale
 * events and, later, resume after a reconnect.
 */
import type { TallySnapshot } from '../modules/voting/voting.events.js';
import type { ReactionBurstData } from '../modules/reactions/reactions.events.js';
import type { SessionState } from '../modules/sessions/sessions.events.js';
import type { OfferView } from '../modules/offers/offers.events.js';
import type { PoolSnapshot } from '../modules/pool/pool.events.js';
import type { PresenceView } from '../modules/presence/presence.events.js';
import type { FraudAlertView } from '../modules/fraud/fraud.events.js';
import type { NotificationView } from '../modules/notifications/notifications.events.js';
import type { ChannelEventView } from '../modules/channels/channels.events.js';
import type { UserAccessNotice } from '../modules/auth/auth.events.js';
import type {
  ConversationAccessData,
  MessageEventData,
  ReadReceiptView,
  TypingView,
} from '../modules/messaging/messaging.events.js';

export interface TopicMap {
  tally: TallySnapshot;
  reactions: ReactionBurstData;
  session: SessionState;
  offers: OfferView;
  investmentPool: PoolSnapshot;
  /** A user's full presence after each announced change (presence.events.ts). */
  presence: PresenceView;
  /** Stored fraud alerts, `fraudAlert:<competitionId>` and `fraudAlert:all` (fraud.events.ts). */
  fraudAlert: FraudAlertView;
  /** A user's new notifications (notifications.events.ts). */
  notifications: NotificationView;
  /** Named live channels, `channel:<name>` (channels.events.ts). */
  channel: ChannelEventView;
  /**
   * Every user's access changes (tokens revoked on a role change or disable), on the one topic
   * `user:all`: rare, and needed wherever the user is served (auth.events.ts says why not per user).
   */
  user: UserAccessNotice;
  /** Messaging (see messaging.events.ts), all per conversation. */
  messages: MessageEventData;
  readReceipts: ReadReceiptView;
  typing: TypingView;
  conversationAccess: ConversationAccessData;
}
export type TopicKind = keyof TopicMap;

export interface RealtimeEvent<T> {
  /** Full topic name, `<kind>:<entityId>`. */
  topic: string;
  seq: number;
  /** ISO-8601; strings survive the JSON hop through Redis unchanged. */
  publishedAt: string;
  data: T;
}

export const topicName = (kind: TopicKind, entityId: string): string => `${kind}:${entityId}`;
