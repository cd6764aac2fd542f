/**
 * What the investment pool publishes: `investmentPool:<sessionId>`, a full snapshot of the
 * session's pool totals after each pledge that changed something (conflated, snapshot-first).
 * Payloads cross Redis as JSON: plain objects.
 */
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';

export interface PoolEntry {
  submissionId: string;
  /** Sum of the pledges on this submission. */
  amount: number;
  /** Users with a pledge on this submission. */
  backers: number;
}

export interface PoolSnapshot {
  sessionId: string;
  /** Each user's budget in this session. */
  budgetPerBacker: number;
  totalAmount: number;
  /** Distinct users with any pledge in the session. */
  backers: number;
  /** The running order's submissions (zeros included), then any other pledged one by id. */
  entries: PoolEntry[];
}

export type PoolEvent = RealtimeEvent<PoolSnapshot>;

export const poolTopic = (sessionId: string): string => topicName('investmentPool', sessionId);

declare module '../../realtime/topics.js' {
  interface TopicMap {
    investmentPool: PoolSnapshot;
  }
}
