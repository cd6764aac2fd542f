/**
 * The competition activity feed: channel `activity:<competitionId>`, public, written by the server.
 *
 * Fed from the commit points, on the instance that committed (never by subscribing to every
 * topic on every instance): the domain events (src/domain-events.ts) of competitions
 * (opened/closed), offers (every transition), sessions and tallies (this instance's publishes).
 *
 * Event types and data:
 * - COMPETITION_OPENED / COMPETITION_CLOSED  { competitionId, title }
 * - VOTES_MILESTONE  { competitionId, milestone, totalVotes }: totalVotes crossed a multiple of
 *   `milestoneEvery` (100) for the first time; a jump over several announces the highest. Exactly
 *   once cluster-wide: the high-water mark is advanced in the publishing transaction.
 * - OFFER_MADE / OFFER_COUNTERED / OFFER_ACCEPTED / OFFER_REJECTED / OFFER_WITHDRAWN /
 *   OFFER_EXPIRED  { offerId, sessionId, submissionId, judgeId, judgeName, authorId, type,
 *   amount, equityPercentage, counterOfId }
 * - SESSION_UPDATED  { sessionId, status, currentSubmissionId, currentSubmissionTitle, timerEndsAt,
 *   sessionSeq }
 *
 * After the commit, never failing the operation that caused it. Competition, offer and session
 * entries come from durable events (the outbox): a failed write rejects and is retried, a replay
 * after a crash writes nothing twice (`delivery.once` in the entry's transaction). Milestones come
 * from a signal (tally.published), best effort: a failure is logged and the next tally publish
 * announces the milestone. Events of one competition handled by one instance keep their order (one
 * queue per channel).
 */
import type { Prisma, PrismaClient } from '../../generated/prisma/client.js';
import { CompetitionStatus, OfferStatus } from '../../generated/prisma/enums.js';
import type { DomainEventMap, DomainEvents, OutboxDelivery } from '../../domain-events.js';
import type { OfferEvent, OfferView } from '../offers/offers.events.js';
import type { SessionEvent } from '../sessions/sessions.events.js';
import type { TallyEvent } from '../voting/voting.events.js';
import type { ChannelsService } from './channels.service.js';

export const activityChannel = (competitionId: string): string => `activity:${competitionId}`;

export const MILESTONE_EVERY = 100;

/** The highest multiple of `every` reached by `total`, or null below the first one. */
export function milestoneOf(total: number, every = MILESTONE_EVERY): number | null {
  const m = Math.floor(total / every) * every;
  return m >= every ? m : null;
}

/** The activity entry for one offer transition; null for the original's COUNTERED (its counter-offer says it). */
export function offerActivity(offer: OfferView): { type: string; data: Record<string, unknown> } | null {
  let type: string;
  switch (offer.status) {
    case OfferStatus.PENDING:
      type = offer.counterOfId === null ? 'OFFER_MADE' : 'OFFER_COUNTERED';
      break;
    case OfferStatus.ACCEPTED:
    case OfferStatus.REJECTED:
    case OfferStatus.WITHDRAWN:
    case OfferStatus.EXPIRED:
      type = `OFFER_${offer.status}`;
      break;
    default:
      return null;
  }
  return {
    type,
    data: {
      offerId: offer.id,
      sessionId: offer.sessionId,
      submissionId: offer.submissionId,
      judgeId: offer.judge.id,
      judgeName: offer.judge.name,
      authorId: offer.author.id,
      type: offer.type,
      amount: offer.amount,
      equityPercentage: offer.equityPercentage,
      counterOfId: offer.counterOfId,
    },
  };
}

const SESSION_CACHE_MAX = 10_000;

export function createActivityFeed(deps: {
  prisma: PrismaClient;
  channels: Pick<ChannelsService, 'publish'>;
  /** The commits it reports (subscribed at creation). */
  events: Pick<DomainEvents, 'on'>;
  milestoneEvery?: number;
  onError: (error: unknown, details: Record<string, unknown>) => void;
}) {
  const { prisma, channels, onError } = deps;
  const every = deps.milestoneEvery ?? MILESTONE_EVERY;
  const queues = new Map<string, Promise<unknown>>();
  const sessionCompetition = new Map<string, string>();

  /** Runs `work` after the previous work of the same queue (a channel) on this instance; rejects if it fails. */
  function enqueue(channel: string, work: () => Promise<unknown>): Promise<void> {
    const previous = queues.get(channel) ?? Promise.resolve();
    const run = previous.then(work).then(() => undefined);
    const next = run.catch(() => undefined); // the queue goes on; the caller hears of the failure
    queues.set(channel, next);
    void next.finally(() => {
      if (queues.get(channel) === next) queues.delete(channel);
    });
    return run;
  }

  /** An entry of a durable event: written once per (event, key), whatever the replays. */
  const once = (delivery: OutboxDelivery, key: string) => ({
    onlyIf: (tx: Prisma.TransactionClient) => delivery.once(tx, `activity:${key}`),
  });

  async function competitionOfSession(sessionId: string): Promise<string | null> {
    const cached = sessionCompetition.get(sessionId);
    if (cached) return cached;
    const session = await prisma.eventSession.findUnique({ where: { id: sessionId }, select: { competitionId: true } });
    if (!session) return null;
    if (sessionCompetition.size >= SESSION_CACHE_MAX)
      sessionCompetition.delete(sessionCompetition.keys().next().value!);
    sessionCompetition.set(sessionId, session.competitionId);
    return session.competitionId;
  }

  function tallyPublished(event: TallyEvent): void {
    const { competitionId, totalVotes } = event.data;
    const milestone = milestoneOf(totalVotes, every);
    if (milestone === null) return;
    const marker = `activityMilestone:${competitionId}`;
    void enqueue(activityChannel(competitionId), () =>
      channels.publish(
        activityChannel(competitionId),
        'VOTES_MILESTONE',
        { competitionId, milestone, totalVotes },
        {
          // The cluster-wide high-water mark, advanced only upwards, in the event's transaction.
          onlyIf: async (tx: Prisma.TransactionClient) => {
            const advanced = await tx.$queryRaw<{ seq: number }[]>`
              INSERT INTO "TopicSequence" ("topic", "seq", "updatedAt") VALUES (${marker}, ${milestone}, ${new Date()})
              ON CONFLICT ("topic") DO UPDATE SET "seq" = EXCLUDED."seq", "updatedAt" = EXCLUDED."updatedAt"
              WHERE "TopicSequence"."seq" < EXCLUDED."seq"
              RETURNING "seq"`;
            return advanced.length > 0;
          },
        },
      ),
    ).catch((error: unknown) => onError(error, { channel: activityChannel(competitionId), what: 'VOTES_MILESTONE' }));
  }

  function sessionChanged(event: SessionEvent, delivery: OutboxDelivery): Promise<void> {
    const state = event.data;
    const current = state.submissions[state.currentIndex] ?? null;
    return enqueue(activityChannel(state.competitionId), () =>
      channels.publish(
        activityChannel(state.competitionId),
        'SESSION_UPDATED',
        {
          sessionId: state.id,
          status: state.status,
          currentSubmissionId: current?.id ?? null,
          currentSubmissionTitle: current?.title ?? null,
          timerEndsAt: state.timerEndsAt,
          sessionSeq: event.seq,
        },
        once(delivery, 'session'),
      ),
    );
  }

  async function competitionStatusChanged(
    competition: DomainEventMap['competition.statusChanged'],
    delivery: OutboxDelivery,
  ): Promise<void> {
    if (competition.status !== CompetitionStatus.OPEN && competition.status !== CompetitionStatus.CLOSED) return;
    const type = competition.status === CompetitionStatus.OPEN ? 'COMPETITION_OPENED' : 'COMPETITION_CLOSED';
    return enqueue(activityChannel(competition.id), () =>
      channels.publish(
        activityChannel(competition.id),
        type,
        { competitionId: competition.id, title: competition.title },
        once(delivery, 'competition'),
      ),
    );
  }

  async function offersCommitted(events: readonly OfferEvent[], delivery: OutboxDelivery): Promise<void> {
    const entries = events.flatMap((event, i) => {
      const entry = offerActivity(event.data);
      return entry ? [{ sessionId: event.data.sessionId, key: `offer:${i}`, ...entry }] : [];
    });
    if (entries.length === 0) return;
    // Sessions resolved to competitions in one queue (keeps commit order across calls), then
    // each entry goes on its competition's channel queue; done when every entry is written.
    return enqueue('offers', async () => {
      const writes: Promise<void>[] = [];
      for (const entry of entries) {
        const competitionId = await competitionOfSession(entry.sessionId);
        if (competitionId === null) continue;
        writes.push(
          enqueue(activityChannel(competitionId), () =>
            channels.publish(activityChannel(competitionId), entry.type, entry.data, once(delivery, entry.key)),
          ),
        );
      }
      await Promise.all(writes);
    });
  }

  deps.events.on('competition.statusChanged', competitionStatusChanged);
  deps.events.on('offers.committed', offersCommitted);
  deps.events.on('session.changed', sessionChanged);
  deps.events.on('tally.published', tallyPublished);

  return {
    /** Resolves when the activity work queued so far is done (shutdown, tests). */
    async settle(): Promise<void> {
      while (queues.size > 0) await Promise.allSettled([...queues.values()]);
    },
  };
}

export type ActivityFeed = ReturnType<typeof createActivityFeed>;
