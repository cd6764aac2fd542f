/**
 * Shark-Tank offers: judges make offers on a session's submissions, founders accept, reject or
 * counter, the author may withdraw, and offers past their expiry become EXPIRED. Every
 * transition is one transaction that also takes the event's seq; events are published after
 * the commit.
 *
 * Locks, always in this order (so no two transactions can wait on each other in a cycle):
 * EventSession FOR SHARE → Submission FOR UPDATE → Offer rows FOR UPDATE → TopicSequence
 * (nextSeq, last). The submission row lock serialises every transition of one submission's offers
 * across instances, so of concurrent ACCEPTs exactly one finds no ACCEPTED offer and wins. The
 * expiry sweeper locks only Offer rows (SKIP LOCKED, so instances never wait on each other or
 * expire the same row twice) and then topics in sessionId order.
 *
 * One file on purpose: every offer transition shares one transaction shape (lock, decide with
 * offers.rules.ts, sequence, publish after commit) and the expiry sweep reuses it.
 */
import type { PrismaClient, Prisma } from '../../generated/prisma/client.js';
import { OfferStatus, Role, SessionStatus, type OfferType } from '../../generated/prisma/enums.js';
import { badInput, notFound } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { eventLogHistory } from '../../realtime/event-log.js';
import { readEventPage, resumableStream, type EventPage } from '../../realtime/resume.js';
import {
  OFFER_INCLUDE,
  buildViews,
  offersTopic,
  publishOfferEvents,
  sequenceOfferEvents,
  type OfferEvent,
  type OfferRow,
  type OfferView,
} from './offers.events.js';
import { alreadyAccepted, negotiationOpen, onlyJudges, ownSubmission } from './offers.errors.js';
import { sessionEnded } from '../sessions/sessions.errors.js';
import {
  DEFAULT_MIN_EXPIRY_SECONDS,
  MAKE_OFFER_FIELDS,
  decideTransition,
  rejectCounterFields,
  validateCounterTerms,
  validateTerms,
  type CounterInput,
  type OfferTerms,
} from './offers.rules.js';
import type { DomainEvents, OutboxRecord } from '../../domain-events.js';

export interface MakeOfferInput {
  sessionId: string;
  submissionId: string;
  type: OfferType;
  amount: number;
  equityPercentage?: number | null;
  interestRatePercent?: number | null;
  termMonths?: number | null;
  royaltyPercent?: number | null;
  conditions?: readonly string[] | null;
  expiresInSeconds?: number | null;
}

export type OfferResponse = 'ACCEPT' | 'REJECT' | 'COUNTER';

export interface RespondToOfferInput extends CounterInput {
  offerId: string;
  response: OfferResponse;
}

/** A mutation's result: the offer and the seq of the event that carried this state. */
export type OfferResult = OfferView & { seq: number };

export interface OffersServiceDeps {
  prisma: PrismaClient;
  bus: EventBus;
  /** OFFER_MIN_EXPIRY_SECONDS: the shortest expiresInSeconds accepted. */
  minExpirySeconds?: number;
  /** How often this instance persists and publishes expiries; 0 disables the sweeper. */
  sweepIntervalMs?: number;
  /** How long an offerUpdated subscriber waits on the bus for a missing seq before reading it from the history. */
  gapTimeoutMs?: number;
  /** RESUME_WINDOW_SECONDS: how long offer events are kept for resuming. */
  resumeWindowSeconds?: number;
  now?: () => Date;
  onError?: (error: unknown) => void;
  /**
   * Where every commit that changed offers (made, answered, withdrawn, expired) is announced
   * ('offers.committed': notifications, the activity feed): recorded in the transition's
   * transaction (the outbox), delivered after its events are published.
   */
  events?: Pick<DomainEvents, 'record' | 'committed'>;
}

type Tx = Prisma.TransactionClient;

const SWEEP_BATCH = 200;

interface Sequenced {
  events: OfferEvent[];
  outboxed: OutboxRecord | undefined;
}

interface SessionFacts {
  status: SessionStatus;
  inRunningOrder: boolean;
}

/** The session row FOR SHARE (it cannot END under us), and whether `submissionId` is in its running order. */
async function lockSession(tx: Tx, sessionId: string, submissionId: string): Promise<SessionFacts> {
  const [row] = await tx.$queryRaw<SessionFacts[]>`
    SELECT "status", (${submissionId} = ANY("submissionIds")) AS "inRunningOrder"
    FROM "EventSession" WHERE "id" = ${sessionId} FOR SHARE`;
  if (!row) throw notFound('EventSession', sessionId);
  return row;
}

async function lockSubmission(tx: Tx, submissionId: string): Promise<{ founderId: string | null }> {
  const [row] = await tx.$queryRaw<{ founderId: string | null }[]>`
    SELECT "founderId" FROM "Submission" WHERE "id" = ${submissionId} FOR UPDATE`;
  if (!row) throw notFound('Submission', submissionId);
  return row;
}

async function lockOffer(tx: Tx, offerId: string): Promise<OfferRow> {
  await tx.$queryRaw`SELECT "id" FROM "Offer" WHERE "id" = ${offerId} FOR UPDATE`;
  const row = await tx.offer.findUnique({ where: { id: offerId }, include: OFFER_INCLUDE });
  if (!row) throw notFound('Offer', offerId);
  return row;
}

const termsData = (terms: OfferTerms, now: Date) => ({
  type: terms.type,
  amount: terms.amount,
  equityPercentage: terms.equityPercentage,
  interestRatePercent: terms.interestRatePercent,
  termMonths: terms.termMonths,
  royaltyPercent: terms.royaltyPercent,
  conditions: terms.conditions,
  expiresAt: terms.expiresInSeconds === null ? null : new Date(now.getTime() + terms.expiresInSeconds * 1000),
});

export function createOffersService(deps: OffersServiceDeps) {
  const { prisma, bus } = deps;
  const minExpirySeconds = deps.minExpirySeconds ?? DEFAULT_MIN_EXPIRY_SECONDS;
  const gapTimeoutMs = deps.gapTimeoutMs ?? 150;
  const history = (sessionId: string) =>
    eventLogHistory<OfferView>(prisma, offersTopic(sessionId), deps.resumeWindowSeconds ?? 300);
  const clock = deps.now ?? (() => new Date());
  const onError = deps.onError ?? (() => undefined);
  /** Sequences the changed offers and records their 'offers.committed', in the transition's transaction. */
  async function sequence(tx: Tx, changed: readonly OfferView[]): Promise<Sequenced> {
    const events = await sequenceOfferEvents(tx, changed);
    const outboxed = events.length > 0 ? await deps.events?.record(tx, 'offers.committed', events) : undefined;
    return { events, outboxed };
  }
  /** After the commit: the offers' events on the bus, then their domain event. */
  function publish({ events, outboxed }: Sequenced): void {
    publishOfferEvents(bus, events);
    if (outboxed) deps.events?.committed(outboxed);
  }

  /**
   * Runs `work` in a transaction; the offers it reports changed get their seqs in the same
   * transaction and are published after the commit. Resolves with the result offer and its seq.
   */
  async function transition(
    work: (tx: Tx) => Promise<{ resultId: string; changed: OfferView[] }>,
  ): Promise<OfferResult> {
    const { resultId, sequenced } = await prisma.$transaction(async (tx) => {
      const { resultId, changed } = await work(tx);
      return { resultId, sequenced: await sequence(tx, changed) };
    });
    publish(sequenced);
    const { events } = sequenced;
    const event = events.find((e) => e.data.id === resultId)!;
    return { ...event.data, seq: event.seq };
  }

  async function reread(tx: Tx, ids: readonly string[]): Promise<OfferView[]> {
    const rows = await tx.offer.findMany({ where: { id: { in: [...ids] } }, include: OFFER_INCLUDE });
    const byId = new Map(rows.map((r) => [r.id, r]));
    return buildViews(
      tx,
      ids.map((id) => byId.get(id)!),
    );
  }

  /** Reads the offer's session and submission ids without locking, to take the locks in order. */
  async function locate(offerId: string): Promise<{ sessionId: string; submissionId: string }> {
    const offer = await prisma.offer.findUnique({
      where: { id: offerId },
      select: { sessionId: true, submissionId: true },
    });
    if (!offer) throw notFound('Offer', offerId);
    return offer;
  }

  async function acceptedOn(tx: Tx, submissionId: string): Promise<string | null> {
    const accepted = await tx.offer.findFirst({
      where: { submissionId, status: OfferStatus.ACCEPTED },
      select: { id: true },
    });
    return accepted?.id ?? null;
  }

  // ---------------------------------------------------------------------------- sweeper

  /** Persists EXPIRED for due offers (one batch); only one instance wins each row. */
  async function sweepBatch(): Promise<number> {
    const now = clock();
    const due = await prisma.$queryRaw<unknown[]>`
      SELECT 1 FROM "Offer" WHERE "status" = 'PENDING' AND "expiresAt" <= ${now} LIMIT 1`;
    if (due.length === 0) return 0;
    const sequenced = await prisma.$transaction(async (tx): Promise<Sequenced | null> => {
      const locked = await tx.$queryRaw<{ id: string }[]>`
        SELECT "id" FROM "Offer" WHERE "status" = 'PENDING' AND "expiresAt" <= ${now}
        ORDER BY "id" LIMIT ${SWEEP_BATCH} FOR UPDATE SKIP LOCKED`;
      if (locked.length === 0) return null;
      const ids = locked.map((r) => r.id);
      await tx.offer.updateMany({
        where: { id: { in: ids }, status: OfferStatus.PENDING },
        data: { status: OfferStatus.EXPIRED },
      });
      return sequence(tx, await reread(tx, ids));
    });
    if (!sequenced) return 0;
    publish(sequenced);
    return sequenced.events.length;
  }

  async function sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await sweepBatch();
      total += n;
      if (n < SWEEP_BATCH) return total;
    }
  }

  let sweepTimer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> | undefined;
  let closed = false;
  const sweepIntervalMs = deps.sweepIntervalMs ?? 0;
  function scheduleSweep(): void {
    if (closed || sweepIntervalMs <= 0) return;
    sweepTimer = setTimeout(() => {
      sweeping = sweep()
        .catch(onError)
        .finally(() => {
          sweeping = undefined;
          scheduleSweep();
        });
    }, sweepIntervalMs);
    sweepTimer.unref();
  }
  scheduleSweep();

  // ---------------------------------------------------------------------------- service

  async function requireSession(sessionId: string): Promise<void> {
    const session = await prisma.eventSession.findUnique({ where: { id: sessionId }, select: { id: true } });
    if (!session) throw notFound('EventSession', sessionId);
  }

  async function byId(id: string): Promise<OfferView | null> {
    const row = await prisma.offer.findUnique({ where: { id }, include: OFFER_INCLUDE });
    return row ? ((await buildViews(prisma, [row]))[0] ?? null) : null;
  }

  return {
    byId,

    /** Every offer on the submission, newest first (counter-offers included). */
    async forSubmission(submissionId: string): Promise<OfferView[]> {
      const submission = await prisma.submission.findUnique({ where: { id: submissionId }, select: { id: true } });
      if (!submission) throw notFound('Submission', submissionId);
      const rows = await prisma.offer.findMany({
        where: { submissionId },
        include: OFFER_INCLUDE,
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      });
      return buildViews(prisma, rows);
    },

    async makeOffer(viewer: Viewer, input: MakeOfferInput): Promise<OfferResult> {
      if (viewer.role !== Role.JUDGE) throw onlyJudges();
      const terms = validateTerms(input.type, input, MAKE_OFFER_FIELDS, { minExpirySeconds });
      return transition(async (tx) => {
        const session = await lockSession(tx, input.sessionId, input.submissionId);
        if (session.status === SessionStatus.ENDED) throw sessionEnded(input.sessionId);
        if (!session.inRunningOrder) {
          throw badInput(
            'input.submissionId',
            `Submission ${input.submissionId} is not in the running order of session ${input.sessionId}`,
          );
        }
        const submission = await lockSubmission(tx, input.submissionId);
        if (submission.founderId === null) {
          throw badInput('input.submissionId', `Submission ${input.submissionId} has no founder to answer offers`);
        }
        if (submission.founderId === viewer.id) throw ownSubmission(input.submissionId);
        const now = clock(); // after the locks: time spent waiting for them counts
        const accepted = await acceptedOn(tx, input.submissionId);
        if (accepted !== null) throw alreadyAccepted(input.submissionId, accepted);
        const open = await tx.offer.findFirst({
          where: {
            submissionId: input.submissionId,
            judgeId: viewer.id,
            status: OfferStatus.PENDING,
            OR: [{ expiresAt: null }, { expiresAt: { gt: now } }],
          },
          select: { id: true },
        });
        if (open) throw negotiationOpen(input.submissionId, open.id);
        const created = await tx.offer.create({
          data: {
            sessionId: input.sessionId,
            submissionId: input.submissionId,
            judgeId: viewer.id,
            authorId: viewer.id,
            ...termsData(terms, now),
            createdAt: now,
          },
          include: OFFER_INCLUDE,
        });
        return { resultId: created.id, changed: await buildViews(tx, [created]) };
      });
    },

    /**
     * ACCEPT, REJECT or COUNTER. Accepting settles the submission: its other PENDING offers
     * (unexpired) become REJECTED in the same transaction. COUNTER resolves with the new
     * counter-offer (its counterOf is the original, now COUNTERED).
     */
    async respond(viewer: Viewer, input: RespondToOfferInput): Promise<OfferResult> {
      rejectCounterFields(input.response, input);
      const { sessionId, submissionId } = await locate(input.offerId);
      return transition(async (tx) => {
        const session = await lockSession(tx, sessionId, submissionId);
        const submission = await lockSubmission(tx, submissionId);
        const offer = await lockOffer(tx, input.offerId);
        const now = clock(); // after the locks: an offer that expired while we waited is expired
        const acceptedOfferId = input.response === 'ACCEPT' ? await acceptedOn(tx, submissionId) : null;
        const to = decideTransition(
          { ...offer, founderId: submission.founderId, acceptedOfferId },
          input.response,
          viewer.id,
          now,
        );

        if (input.response === 'COUNTER') {
          const terms = validateCounterTerms(offer, input, { minExpirySeconds });
          if (session.status === SessionStatus.ENDED) throw sessionEnded(sessionId);
          await tx.offer.update({ where: { id: offer.id }, data: { status: to, respondedAt: now } });
          const counter = await tx.offer.create({
            data: {
              sessionId,
              submissionId,
              judgeId: offer.judgeId,
              authorId: viewer.id,
              counterOfId: offer.id,
              ...termsData(terms, now),
              createdAt: now,
            },
            select: { id: true },
          });
          return { resultId: counter.id, changed: await reread(tx, [offer.id, counter.id]) };
        }

        await tx.offer.update({ where: { id: offer.id }, data: { status: to, respondedAt: now } });
        const changed = [offer.id];
        if (to === OfferStatus.ACCEPTED) {
          const others = await tx.offer.updateManyAndReturn({
            where: {
              submissionId,
              status: OfferStatus.PENDING,
              id: { not: offer.id },
              OR: [{ expiresAt: null }, { expiresAt: { gt: now } }],
            },
            data: { status: OfferStatus.REJECTED, respondedAt: now },
            select: { id: true },
          });
          changed.push(...others.map((o) => o.id).sort());
        }
        return { resultId: offer.id, changed: await reread(tx, changed) };
      });
    },

    /** The author takes back a PENDING offer. */
    async withdraw(viewer: Viewer, offerId: string): Promise<OfferResult> {
      const { sessionId, submissionId } = await locate(offerId);
      return transition(async (tx) => {
        await lockSession(tx, sessionId, submissionId);
        const submission = await lockSubmission(tx, submissionId);
        const offer = await lockOffer(tx, offerId);
        const now = clock();
        const to = decideTransition(
          { ...offer, founderId: submission.founderId, acceptedOfferId: null },
          'WITHDRAW',
          viewer.id,
          now,
        );
        await tx.offer.update({ where: { id: offer.id }, data: { status: to } });
        return { resultId: offer.id, changed: await reread(tx, [offer.id]) };
      });
    },

    requireSession,

    /**
     * The session's offer transitions in seq order: after `afterSeq` (replayed from the history,
     * RESYNC_REQUIRED when no longer kept or ahead), else from now on. Resolves once live on the broker.
     */
    async subscribe(sessionId: string, afterSeq?: number | null): Promise<AsyncIterableIterator<OfferEvent>> {
      await requireSession(sessionId);
      return resumableStream({
        subscribe: () => bus.subscribe('offers', sessionId),
        history: history(sessionId),
        afterSeq,
        gapWaitMs: gapTimeoutMs,
      });
    },

    /** offerEvents: the polling counterpart of offerUpdated. */
    async events(
      sessionId: string,
      args: { afterSeq?: number | null; first?: number | null },
    ): Promise<EventPage<OfferView>> {
      await requireSession(sessionId);
      return readEventPage(history(sessionId), args);
    },

    /** Expires due offers now (the sweeper does this every sweepIntervalMs). */
    sweep,

    /** Stops the sweeper and waits for a sweep in progress. */
    async close(): Promise<void> {
      closed = true;
      clearTimeout(sweepTimer);
      await sweeping;
    },
  };
}

export type OffersService = ReturnType<typeof createOffersService>;
