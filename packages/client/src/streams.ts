/**
 * What the kit knows about Ovation's subscription fields (the server's resume design): which ones
 * resume from a cursor, and how each is polled when no stream gets through.
 *
 * - Resumable fields carry a gap-free `seq` per topic and take `afterSeq`: on every reconnect the
 *   kit resubscribes after the last seq it delivered. Their polling query takes the same arguments
 *   plus `first` and answers a page `{ events, cursor, latestSeq, hasMore }` (channelEvents: the
 *   older `{ events, latestSeq, hasMore, missed }`, whose next cursor is the last event's seq).
 * - Snapshot fields start with the current state, so a resubscription needs no cursor; their
 *   polling query answers the same type (presence: a list of them).
 * - Any other field (typing, followingPresenceChanged) is resubscribed as it is and has no polling
 *   fallback.
 */
export interface ResumableField {
  kind: 'resumable';
  /** The polling query with the same arguments (+ `first`). */
  poll: string;
  page: 'page' | 'history';
  /**
   * Whether a subscription without a cursor is anchored first: the polling query without afterSeq
   * answers the topic's latest seq, and the subscription starts after it. So even a subscription
   * that has not received an event yet loses nothing across a reconnect. Not for notificationAdded:
   * without afterSeq it starts with the unread backlog, which a cursor would skip.
   */
  anchor: boolean;
}

export interface SnapshotField {
  kind: 'snapshot';
  /** The query answering the current state. */
  query: string;
  /** Argument names that differ between the subscription and the query (subscription → query). */
  rename?: Readonly<Record<string, string>>;
  /** The query answers a list of the subscription's items (each one delivered as an event). */
  list?: boolean;
}

export type StreamField = ResumableField | SnapshotField;

const resumable = (poll: string, page: ResumableField['page'] = 'page', anchor = true): ResumableField => ({
  kind: 'resumable',
  poll,
  page,
  anchor,
});

export const STREAM_FIELDS: Readonly<Record<string, StreamField>> = {
  reactions: resumable('reactionEvents'),
  offerUpdated: resumable('offerEvents'),
  messageAdded: resumable('messageEvents'),
  readReceiptUpdated: resumable('readReceiptEvents'),
  notificationAdded: resumable('notificationEvents', 'page', false),
  fraudAlertRaised: resumable('fraudAlertEvents'),
  channelEvent: resumable('channelEvents', 'history'),
  tallyUpdated: { kind: 'snapshot', query: 'tally' },
  sessionUpdated: { kind: 'snapshot', query: 'session', rename: { sessionId: 'id' } },
  investmentPoolUpdated: { kind: 'snapshot', query: 'investmentPool' },
  presenceChanged: { kind: 'snapshot', query: 'presence', list: true },
  dashboardUpdated: { kind: 'snapshot', query: 'liveDashboard' },
};

/** Events per polling page (the servers' maximum for every resumable polling query). */
export const POLL_PAGE_SIZE = 100;
