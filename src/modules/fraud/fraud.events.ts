/**
 * What the fraud module publishes: one event per stored alert on `fraudAlert:<competitionId>`
 * (when the alert belongs to a competition) and on `fraudAlert:all`, each with its own seq taken
 * in the transaction that stored the alert. An event stream, never conflated; subscribers get
 * the events in seq order (inSeqOrder), starting after the seq current when they subscribed.
 * Payloads cross Redis as JSON: plain objects, times as ISO strings.
 */
import type { FraudAlert } from '../../generated/prisma/client.js';
import type { FraudAction } from '../../generated/prisma/enums.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';

export interface FraudAlertView {
  id: string;
  userId: string | null;
  competitionId: string | null;
  rule: string;
  score: number;
  action: FraudAction;
  details: unknown;
  createdAt: string;
}

export type FraudAlertEvent = RealtimeEvent<FraudAlertView>;

/** The entity id of the topic that carries every alert (competition ids are UUIDs: no clash). */
export const ALL_ALERTS = 'all';

export const fraudAlertTopic = (competitionId: string | null): string =>
  topicName('fraudAlert', competitionId ?? ALL_ALERTS);

export const viewOfAlert = (row: FraudAlert): FraudAlertView => ({
  id: row.id,
  userId: row.userId,
  competitionId: row.competitionId,
  rule: row.rule,
  score: row.score,
  action: row.action,
  details: row.details ?? null,
  createdAt: row.createdAt.toISOString(),
});

declare module '../../realtime/topics.js' {
  interface TopicMap {
    /** Stored fraud alerts, `fraudAlert:<competitionId>` and `fraudAlert:all`. */
    fraudAlert: FraudAlertView;
  }
}
