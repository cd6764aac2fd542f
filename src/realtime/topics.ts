/**
 * The one typed map of realtime topics. Every topic is entity-scoped (`<kind>:<entityId>`), so an
 * instance only receives events for entities somebody on it watches; never a global topic
 * filtered everywhere. Every event carries a per-topic `seq` (strictly increasing, assigned in
 * the database transaction that produced the event's state) so subscribers can drop stale
 * events and, later, resume after a reconnect.
 */
import type { TallySnapshot } from '../modules/voting/voting.events.js';
import type { ReactionBurstData } from '../modules/reactions/reactions.events.js';
import type { SessionState } from '../modules/sessions/sessions.events.js';
import type { OfferView, PoolSnapshot } from '../modules/offers/offers.events.js';

export interface TopicMap {
  tally: TallySnapshot;
  reactions: ReactionBurstData;
  session: SessionState;
  offers: OfferView;
  investmentPool: PoolSnapshot;
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
