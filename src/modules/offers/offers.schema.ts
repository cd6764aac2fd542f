/**
 * Offers (Shark-Tank negotiation); the audience investment pool is src/modules/pool.
 *
 * Visibility: offers and offerUpdated are public, like the stage they happen on (and like
 * leaderboard/tallyUpdated). makeOffer needs role JUDGE; respondToOffer and withdrawOffer need a
 * signed-in user, and the service
 * checks who that user is to the offer (founder of the submission, judge of a counter-offer,
 * author).
 */
import { OfferStatus, OfferType, Role } from '../../generated/prisma/enums.js';
import { builder } from '../../schema/builder.js';
import { UserViewRef } from '../users/users.schema.js';
import { AFTER_SEQ_DOC, FIRST_DOC, POLL_AFTER_SEQ_DOC, eventPageRef } from '../../schema/event-page.js';
import type { OfferView } from './offers.events.js';
import { effectiveStatus } from './offers.rules.js';

/** An offer from a query (seq null), a mutation or an event (seq of the transition). */
type OfferNode = OfferView & { seq?: number | null };

const OfferTypeEnum = builder.enumType(OfferType, { name: 'OfferType' });
const OfferStatusEnum = builder.enumType(OfferStatus, { name: 'OfferStatus' });
const OfferResponseEnum = builder.enumType('OfferResponse', { values: ['ACCEPT', 'REJECT', 'COUNTER'] as const });

const OfferRef = builder.objectRef<OfferNode>('Offer');
OfferRef.implement({
  description: [
    "A judge's offer on a submission in a session, or the founder's counter-offer (counterOf set).",
    'PENDING offers past expiresAt read as EXPIRED.',
  ].join('\n'),
  fields: (t) => ({
    id: t.exposeID('id'),
    sessionId: t.exposeID('sessionId'),
    submissionId: t.exposeID('submissionId'),
    judge: t.field({
      type: UserViewRef,
      description: 'The judge this negotiation is with (also on counter-offers).',
      resolve: (o) => o.judge,
    }),
    author: t.field({
      type: UserViewRef,
      description: "Who made this offer: the judge, or the submission's founder for a counter-offer.",
      resolve: (o) => o.author,
    }),
    type: t.expose('type', { type: OfferTypeEnum }),
    amount: t.exposeFloat('amount'),
    equityPercentage: t.exposeFloat('equityPercentage', { nullable: true, description: 'EQUITY: 0 < p ≤ 100.' }),
    interestRatePercent: t.exposeFloat('interestRatePercent', {
      nullable: true,
      description: 'LOAN: yearly interest, 0..100; null: to be agreed.',
    }),
    termMonths: t.exposeInt('termMonths', { nullable: true, description: 'LOAN: 1..600; null: to be agreed.' }),
    royaltyPercent: t.exposeFloat('royaltyPercent', {
      nullable: true,
      description: 'ROYALTY: 0 < p ≤ 100; null: to be agreed.',
    }),
    conditions: t.exposeStringList('conditions'),
    status: t.field({
      type: OfferStatusEnum,
      resolve: (o) => effectiveStatus(o.status, o.expiresAt, new Date()),
    }),
    counterOf: t.field({
      type: OfferRef,
      nullable: true,
      description: 'Set on a counter-offer: the offer it answers.',
      resolve: (o, _args, ctx) =>
        o.counterOfId === null ? null : (o.counterOf ?? ctx.services.offers.byId(o.counterOfId)),
    }),
    counter: t.field({
      type: OfferRef,
      nullable: true,
      description: "Set on a COUNTERED offer: the founder's counter-offer.",
      resolve: (o, _args, ctx) => (o.counterId === null ? null : ctx.services.offers.byId(o.counterId)),
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (o) => o.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (o) => o.updatedAt }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (o) => o.expiresAt }),
    respondedAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'When the other side accepted, rejected or countered it.',
      resolve: (o) => o.respondedAt,
    }),
    seq: t.int({
      nullable: true,
      description: [
        "Position of this state in the session's offerUpdated stream (strictly increasing per session):",
        'set on events and mutation results, null on queries.',
      ].join(' '),
      resolve: (o) => o.seq ?? null,
    }),
  }),
});

const MakeOfferInput = builder.inputType('MakeOfferInput', {
  description: [
    'EQUITY needs equityPercentage. LOAN takes interestRatePercent and termMonths, ROYALTY royaltyPercent: optional,',
    "checked when given, unset = to be agreed. Another type's terms are rejected. conditions: at most 20, each 1..500 characters.",
    'expiresInSeconds: 10..604800 (unset: the offer stands until answered or withdrawn).',
  ].join('\n'),
  fields: (t) => ({
    sessionId: t.id({ required: true }),
    submissionId: t.id({ required: true }),
    type: t.field({ type: OfferTypeEnum, required: true }),
    amount: t.float({ required: true }),
    equityPercentage: t.float(),
    interestRatePercent: t.float(),
    termMonths: t.int(),
    royaltyPercent: t.float(),
    conditions: t.stringList(),
    expiresInSeconds: t.int(),
  }),
});

const RespondToOfferInput = builder.inputType('RespondToOfferInput', {
  description: [
    "COUNTER (founder, on a judge's offer only): counterAmount is required, counterEquityPercentage too for EQUITY;",
    "LOAN/ROYALTY terms, conditions and the expiry window default to the original's. ACCEPT and REJECT take no counter fields.",
  ].join('\n'),
  fields: (t) => ({
    offerId: t.id({ required: true }),
    response: t.field({ type: OfferResponseEnum, required: true }),
    counterAmount: t.float(),
    counterEquityPercentage: t.float(),
    counterInterestRatePercent: t.float(),
    counterTermMonths: t.int(),
    counterRoyaltyPercent: t.float(),
    counterConditions: t.stringList(),
    counterExpiresInSeconds: t.int(),
  }),
});

builder.queryFields((t) => ({
  offers: t.field({
    type: [OfferRef],
    description: 'Every offer on the submission (counter-offers included), newest first. Public.',
    args: { submissionId: t.arg.id({ required: true }) },
    resolve: (_root, { submissionId }, ctx) => ctx.services.offers.forSubmission(String(submissionId)),
  }),
  offer: t.field({
    type: OfferRef,
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.offers.byId(String(id)),
  }),
}));

builder.mutationFields((t) => ({
  makeOffer: t.field({
    type: OfferRef,
    description: 'JUDGE',
    authScopes: (_root, _args, ctx) => ctx.viewer?.role === Role.JUDGE,
    guard: { rate: 'offers' },
    args: { input: t.arg({ type: MakeOfferInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.offers.makeOffer(ctx.viewer!, {
        ...input,
        sessionId: String(input.sessionId),
        submissionId: String(input.submissionId),
      }),
  }),
  respondToOffer: t.field({
    type: OfferRef,
    description: [
      "The founder of the offer's submission (ACCEPT, REJECT, COUNTER); on a counter-offer, its judge (ACCEPT, REJECT).",
      "COUNTER returns the new counter-offer. ACCEPT rejects the submission's other pending offers.",
    ].join(' '),
    authScopes: { authenticated: true },
    guard: { rate: 'offers' },
    args: { input: t.arg({ type: RespondToOfferInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.offers.respond(ctx.viewer!, { ...input, offerId: String(input.offerId) }),
  }),
  withdrawOffer: t.field({
    type: OfferRef,
    description: 'The judge who made it (the founder for a counter-offer), while PENDING.',
    authScopes: { authenticated: true },
    guard: { rate: 'offers' },
    args: { offerId: t.arg.id({ required: true }) },
    resolve: (_root, { offerId }, ctx) => ctx.services.offers.withdraw(ctx.viewer!, String(offerId)),
  }),
}));

builder.subscriptionField('offerUpdated', (t) =>
  t.field({
    delivery: { kind: 'events', maxQueued: 100, shared: true },
    type: OfferRef,
    description:
      'Every offer transition in the session (made, countered, answered, withdrawn, expired), in seq order, from now on or after afterSeq. Public.',
    args: { sessionId: t.arg.id({ required: true }), afterSeq: t.arg.int({ description: AFTER_SEQ_DOC }) },
    subscribe: (_root, { sessionId, afterSeq }, ctx) => ctx.services.offers.subscribe(String(sessionId), afterSeq),
    resolve: (event) => ({ ...event.data, seq: event.seq }),
  }),
);

const OfferEventPageRef = eventPageRef<OfferView, OfferNode>(
  'OfferEventPage',
  OfferRef,
  (event) => ({ ...event.data, seq: event.seq }),
  'offer transitions',
);

builder.queryField('offerEvents', (t) =>
  t.field({
    type: OfferEventPageRef,
    description: 'Polling fallback of offerUpdated: the transitions after afterSeq. Public.',
    args: {
      sessionId: t.arg.id({ required: true }),
      afterSeq: t.arg.int({ description: POLL_AFTER_SEQ_DOC }),
      first: t.arg.int({ description: FIRST_DOC }),
    },
    guard: { rate: 'polls' },
    resolve: (_root, { sessionId, afterSeq, first }, ctx) =>
      ctx.services.offers.events(String(sessionId), { afterSeq, first }),
  }),
);
