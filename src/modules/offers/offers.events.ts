/**
 * What the offers module publishes (the investment pool's topic: src/modules/pool/pool.events.ts), and how a subscriber reads it.
 *
 * - `offers:<sessionId>`: one event per offer transition (made, countered, accepted, rejected,
 *   withdrawn, expired), its seq taken with nextSeq in the transition's transaction. An event
 *   stream, not snapshots: never conflated; subscribers get the events in seq order (see
 *   inSeqOrder), starting after the seq current when they subscribed.
 *
 * Payloads cross Redis as JSON: plain objects, times as ISO strings.
 */
import type { Prisma } from '../../generated/prisma/client.js';
import type { OfferStatus } from '../../generated/prisma/enums.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { appendToLog } from '../../realtime/event-log.js';
import { nextSeq } from '../../realtime/sequence.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';

import type { OfferTerms } from './offers.rules.js';
import { userView, type UserView } from '../users/users.service.js';

/** An offer as the API shows it, the same shape in query results and in events. */
export interface OfferView extends Omit<OfferTerms, 'expiresInSeconds'> {
  id: string;
  sessionId: string;
  submissionId: string;
  judge: UserView;
  /** The judge, or the submission's founder for a counter-offer. */
  author: UserView;
  /** As stored; readers apply effectiveStatus (PENDING past expiresAt reads EXPIRED). */
  status: OfferStatus;
  counterOfId: string | null;
  /** The offer a counter-offer answers, embedded (it is never a counter-offer itself). */
  counterOf: OfferView | null;
  counterId: string | null;
  createdAt: string;
  updatedAt: string;
  expiresAt: string | null;
  respondedAt: string | null;
}

export type OfferEvent = RealtimeEvent<OfferView>;

export const offersTopic = (sessionId: string): string => topicName('offers', sessionId);

// --------------------------------------------------------------------------------- views

export const OFFER_INCLUDE = { judge: true, counter: { select: { id: true } } } as const;
export type OfferRow = Prisma.OfferGetPayload<{ include: typeof OFFER_INCLUDE }>;

type Db = Pick<Prisma.TransactionClient, 'offer' | 'user'>;

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

function toView(row: OfferRow, users: Map<string, UserView>, counterOf: OfferView | null): OfferView {
  return {
    id: row.id,
    sessionId: row.sessionId,
    submissionId: row.submissionId,
    judge: userView(row.judge, row.judgeId),
    author: users.get(row.authorId) ?? userView(undefined, row.authorId),
    type: row.type,
    amount: row.amount,
    equityPercentage: row.equityPercentage,
    interestRatePercent: row.interestRatePercent,
    termMonths: row.termMonths,
    royaltyPercent: row.royaltyPercent,
    conditions: [...row.conditions],
    status: row.status,
    counterOfId: row.counterOfId,
    counterOf,
    counterId: row.counter?.id ?? null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    expiresAt: iso(row.expiresAt),
    respondedAt: iso(row.respondedAt),
  };
}

/** Views of `rows` (in order), with authors and the originals of counter-offers, in two queries. */
export async function buildViews(db: Db, rows: readonly OfferRow[]): Promise<OfferView[]> {
  const originalIds = [...new Set(rows.flatMap((r) => (r.counterOfId === null ? [] : [r.counterOfId])))];
  const originals = originalIds.length
    ? await db.offer.findMany({ where: { id: { in: originalIds } }, include: OFFER_INCLUDE })
    : [];
  const userIds = [...new Set([...rows, ...originals].map((r) => r.authorId))];
  const users = new Map(
    (await db.user.findMany({ where: { id: { in: userIds } }, select: { id: true, name: true, role: true } })).map(
      (u) => [u.id, userView(u, u.id)],
    ),
  );
  const originalViews = new Map(originals.map((o) => [o.id, toView(o, users, null)]));
  return rows.map((row) =>
    toView(row, users, row.counterOfId === null ? null : (originalViews.get(row.counterOfId) ?? null)),
  );
}

// ------------------------------------------------------------------------------ publishing

type SeqTx = Pick<Prisma.TransactionClient, '$queryRaw' | '$executeRaw'>;

/**
 * Takes a seq for each changed offer, in (sessionId, id) order so that transactions touching
 * several sessions (the sweeper) always lock topics in the same order. Call last in the
 * transaction, after every offer row it writes.
 */
export async function sequenceOfferEvents(tx: SeqTx, changed: readonly OfferView[]): Promise<OfferEvent[]> {
  const ordered = [...changed].sort((a, b) => (a.sessionId === b.sessionId ? 0 : a.sessionId < b.sessionId ? -1 : 1));
  const events: OfferEvent[] = [];
  for (const view of ordered) {
    const topic = offersTopic(view.sessionId);
    events.push({ topic, seq: await nextSeq(tx, topic), publishedAt: '', data: view });
  }
  await appendToLog(tx, events); // the resume history: committed with the seqs
  return events;
}

/** After the commit, in seq order. */
export function publishOfferEvents(bus: EventBus, events: readonly OfferEvent[]): void {
  for (const event of events) {
    event.publishedAt = new Date().toISOString();
    bus.publish('offers', event.data.sessionId, event);
  }
}

declare module '../../realtime/topics.js' {
  interface TopicMap {
    offers: OfferView;
  }
}
