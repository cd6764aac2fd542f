/**
 * The one typed map of realtime topics. Every topic is entity-scoped (`<kind>:<entityId>`), so an
 * instance only receives events for entities somebody on it watches; a global topic filtered
 * everywhere only where the events are rare and every instance needs them (`user:all`,
 * `fraudAlert:all`). Every event carries a per-topic `seq` (strictly increasing, assigned in
 * the database transaction that produced the event's state) so subscribers can drop stale
 * events and, later, resume after a reconnect.
 */
/**
 * Kind → payload type. Empty here: each module declares its own topics in its events file
 * (`declare module '../../realtime/topics.js' { interface TopicMap { … } }`), so the realtime layer
 * imports nothing from the modules and the dependency runs one way, modules → realtime.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by the modules' declarations
export interface TopicMap {}
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
