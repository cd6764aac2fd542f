/**
 * Domain events → notifications: subscribed to other modules' commits (src/domain-events.ts), all
 * durable ones (the outbox): delivered after the commit on the committing instance, or after a
 * crash by any instance's sweep; never fails the operation that caused it. A handler resolves when
 * its notifications are written and rejects to be retried. Every notification carries a dedupKey
 * derived from the event, so a replayed event (a retry, a crash after the write) never notifies
 * twice.
 *
 * - Offers: a new offer on your submission → its founder (OFFER_RECEIVED); an answer to your
 *   offer → the offer's author (the judge, or the founder for a counter-offer): OFFER_COUNTERED
 *   (the counter-offer itself), OFFER_ACCEPTED, OFFER_REJECTED (also when another offer was
 *   accepted). Withdrawals and expiries are not answers and notify nobody.
 * - Competitions: CLOSED → every user who voted in it (plus its founders): COMPETITION_CLOSED.
 *   OPEN: a competition is opened once (DRAFT → OPEN) and has no voters yet, so "a competition you
 *   voted in opened" is read as "a competition you have a stake in opened": its submissions'
 *   founders and the users who follow one of them (Follow): COMPETITION_OPENED.
 * - Messages: each recipient with no live connection (presence) gets MESSAGE, one per message.
 */
import type { PrismaClient } from '../../generated/prisma/client.js';
import { CompetitionStatus, NotificationPriority, OfferStatus } from '../../generated/prisma/enums.js';
import type { DomainEventMap, DomainEvents } from '../../domain-events.js';
import type { MessageView } from '../messaging/messaging.events.js';
import type { OfferEvent, OfferView } from '../offers/offers.events.js';
import type { NotificationsService, NotifyInput } from './notifications.service.js';

export interface OfferNotice {
  userId: string;
  input: NotifyInput;
}

interface SubmissionFacts {
  title: string;
  founderId: string | null;
}

function terms(offer: OfferView): string {
  const amount = offer.amount.toLocaleString('en-US');
  return offer.equityPercentage === null
    ? `${offer.type} ${amount}`
    : `${offer.type} ${amount} for ${offer.equityPercentage}%`;
}

/** Who hears of an offer transition, and what; null for transitions that are nobody's news. */
export function offerNotice(offer: OfferView, submission: SubmissionFacts): OfferNotice | null {
  const data = {
    offerId: offer.id,
    sessionId: offer.sessionId,
    submissionId: offer.submissionId,
    status: offer.status,
  };
  switch (offer.status) {
    case OfferStatus.PENDING:
      if (offer.counterOfId === null) {
        if (submission.founderId === null) return null;
        return {
          userId: submission.founderId,
          input: {
            type: 'OFFER_RECEIVED',
            title: `${offer.judge.name} made an offer on ${submission.title}`,
            body: terms(offer),
            priority: NotificationPriority.HIGH,
            data,
            dedupKey: `offer:${offer.id}:received`,
          },
        };
      }
      // A counter-offer answers the judge's offer.
      return {
        userId: offer.judge.id,
        input: {
          type: 'OFFER_COUNTERED',
          title: `${offer.author.name} countered your offer on ${submission.title}`,
          body: terms(offer),
          priority: NotificationPriority.HIGH,
          data: { ...data, counterOfId: offer.counterOfId },
          dedupKey: `offer:${offer.counterOfId}:countered`,
        },
      };
    case OfferStatus.ACCEPTED:
    case OfferStatus.REJECTED: {
      const accepted = offer.status === OfferStatus.ACCEPTED;
      const what = offer.counterOfId === null ? 'Your offer' : 'Your counter-offer';
      return {
        userId: offer.author.id,
        input: {
          type: accepted ? 'OFFER_ACCEPTED' : 'OFFER_REJECTED',
          title: `${what} on ${submission.title} was ${accepted ? 'accepted' : 'rejected'}`,
          body: terms(offer),
          priority: accepted ? NotificationPriority.URGENT : NotificationPriority.NORMAL,
          data,
          dedupKey: `offer:${offer.id}:${offer.status}`,
        },
      };
    }
    default:
      return null;
  }
}

const MESSAGE_PREVIEW = 200;

export function createNotificationTriggers(deps: {
  prisma: PrismaClient;
  notifications: Pick<NotificationsService, 'notify' | 'notifyMany'>;
  /** The commits that notify someone (subscribed at creation). */
  events: Pick<DomainEvents, 'on'>;
  /** How many live connections presence counts for each user, across the cluster. */
  connections: (userIds: readonly string[]) => Promise<ReadonlyMap<string, number>>;
}) {
  const { prisma, notifications } = deps;
  const inFlight = new Set<Promise<unknown>>();

  /** Tracked for settle(); a failure rejects to the outbox relay, which reports it and retries. */
  function run(work: () => Promise<unknown>): Promise<void> {
    const promise = work().then(() => undefined);
    inFlight.add(promise);
    void promise.catch(() => undefined).finally(() => inFlight.delete(promise));
    return promise;
  }

  deps.events.on('offers.committed', offersCommitted);
  deps.events.on('competition.statusChanged', competitionStatusChanged);
  deps.events.on('message.committed', ({ message, recipients }) => messageCommitted(message, recipients));

  return {
    /** Resolves when the notifications triggered so far are written (shutdown, tests). */
    async settle(): Promise<void> {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };

  async function offersCommitted(events: readonly OfferEvent[]): Promise<void> {
    const offers = events.map((e) => e.data).filter((o) => o.status !== OfferStatus.COUNTERED);
    if (offers.length === 0) return;
    return run(async () => {
      const ids = [...new Set(offers.map((o) => o.submissionId))];
      const submissions = new Map(
        (
          await prisma.submission.findMany({
            where: { id: { in: ids } },
            select: { id: true, title: true, founderId: true },
          })
        ).map((s) => [s.id, s]),
      );
      for (const offer of offers) {
        const submission = submissions.get(offer.submissionId);
        const notice = submission && offerNotice(offer, submission);
        if (notice) await notifications.notify(notice.userId, notice.input);
      }
    });
  }

  async function competitionStatusChanged(competition: DomainEventMap['competition.statusChanged']): Promise<void> {
    if (competition.status !== CompetitionStatus.OPEN && competition.status !== CompetitionStatus.CLOSED) return;
    const opened = competition.status === CompetitionStatus.OPEN;
    return run(async () => {
      const founders = (
        await prisma.submission.findMany({
          where: { competitionId: competition.id, founderId: { not: null } },
          select: { founderId: true },
        })
      ).map((s) => s.founderId!);
      const audience = new Set(founders);
      if (opened) {
        const followers = await prisma.follow.findMany({
          where: { followeeId: { in: founders } },
          select: { followerId: true },
        });
        for (const f of followers) audience.add(f.followerId);
      } else {
        const voters = await prisma.vote.findMany({
          where: { competitionId: competition.id },
          select: { voterId: true },
          distinct: ['voterId'],
        });
        for (const v of voters) audience.add(v.voterId);
      }
      if (audience.size === 0) return;
      await notifications.notifyMany([...audience], {
        type: opened ? 'COMPETITION_OPENED' : 'COMPETITION_CLOSED',
        title: opened ? `${competition.title} is open for voting` : `Voting in ${competition.title} has closed`,
        priority: NotificationPriority.NORMAL,
        data: { competitionId: competition.id, status: competition.status },
        dedupKey: `competition:${competition.id}:${competition.status}`,
      });
    });
  }

  /** A message was committed: recipients (participants other than the author) without a live connection get a MESSAGE notification. */
  async function messageCommitted(message: MessageView, recipients: readonly string[]): Promise<void> {
    const others = [...new Set(recipients)].filter((id) => id !== message.author.id);
    if (others.length === 0) return;
    return run(async () => {
      const counts = await deps.connections(others);
      const offline = others.filter((id) => (counts.get(id) ?? 0) === 0);
      if (offline.length === 0) return;
      const preview =
        message.body.length > MESSAGE_PREVIEW ? `${message.body.slice(0, MESSAGE_PREVIEW - 1)}…` : message.body;
      await notifications.notifyMany(offline, {
        type: 'MESSAGE',
        title: `New message from ${message.author.name}`,
        body: preview,
        priority: NotificationPriority.NORMAL,
        data: { conversationId: message.conversationId, messageId: message.id, authorId: message.author.id },
        dedupKey: `message:${message.id}`,
      });
    });
  }
}

export type NotificationTriggers = ReturnType<typeof createNotificationTriggers>;
