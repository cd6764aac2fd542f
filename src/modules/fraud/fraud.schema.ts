import { FraudAction } from '../../generated/prisma/enums.js';
import { builder } from '../../schema/builder.js';
import { AFTER_SEQ_DOC, FIRST_DOC, POLL_AFTER_SEQ_DOC, eventPageRef } from '../../schema/event-page.js';
import type { DecisionCounts } from '../../guards/fraud/fraud.store.js';
import type { FraudAlertEvent, FraudAlertView } from './fraud.events.js';
import { ALERTS_DEFAULT_FIRST, ALERTS_MAX_FIRST, type FraudRuleCount, type FraudStats } from './fraud.service.js';

const FraudActionEnum = builder.enumType(FraudAction, { name: 'FraudAction' });

/** An alert from a query (seq null) or from a stream event (the seq of the topic it was delivered on). */
type FraudAlertNode = FraudAlertView & { seq?: number | null };

const FraudAlertRef = builder.objectRef<FraudAlertNode>('FraudAlert').implement({
  description: 'One flagged or blocked vote or reaction (one per user, rule and action per minute).',
  fields: (t) => ({
    id: t.exposeID('id'),
    userId: t.exposeID('userId', { nullable: true }),
    competitionId: t.exposeID('competitionId', {
      nullable: true,
      description: "The vote's competition, or the competition of the reaction's session.",
    }),
    rule: t.exposeString('rule', {
      description:
        'Which rule fired, e.g. RAPID_VOTING, SHARED_IP, BOT_CADENCE, DUPLICATE_DEVICE (the strongest; details.rules lists every rule that contributed).',
    }),
    score: t.exposeFloat('score', { description: '0..100' }),
    action: t.expose('action', { type: FraudActionEnum }),
    details: t.expose('details', {
      type: 'JSON',
      nullable: true,
      description: 'kind (vote | reaction), submissionIds or sessionId, rules [{ rule, score, ... }], ip, deviceId.',
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (alert) => alert.createdAt }),
    seq: t.int({
      nullable: true,
      description:
        "Set on every event fraudAlertRaised delivers: that stream's seq (the competition's, or the all-competitions one), the resume cursor.",
      resolve: (alert) => alert.seq ?? null,
    }),
  }),
});

const FraudDecisionCountsRef = builder.objectRef<DecisionCounts>('FraudDecisionCounts').implement({
  fields: (t) => ({
    allowed: t.exposeInt('allowed'),
    flagged: t.exposeInt('flagged', { description: 'Counted, with an alert.' }),
    blocked: t.exposeInt('blocked', { description: 'Refused with FRAUD_BLOCKED; nothing counted.' }),
  }),
});

const FraudRuleCountRef = builder.objectRef<FraudRuleCount>('FraudRuleCount').implement({
  fields: (t) => ({
    rule: t.exposeString('rule'),
    action: t.expose('action', { type: FraudActionEnum }),
    alerts: t.exposeInt('alerts'),
  }),
});

const FraudStatsRef = builder.objectRef<FraudStats>('FraudStats').implement({
  description:
    'Fraud decisions since the counters started (with Redis: across every instance, kept 30 days; without: this process).',
  fields: (t) => ({
    competitionId: t.exposeID('competitionId', { nullable: true }),
    votes: t.field({ type: FraudDecisionCountsRef, resolve: (s) => s.votes }),
    reactions: t.field({
      type: FraudDecisionCountsRef,
      description: "With a competitionId: reactions in the competition's sessions.",
      resolve: (s) => s.reactions,
    }),
    alerts: t.field({
      type: [FraudRuleCountRef],
      description: 'Stored alerts by strongest rule and action, most first.',
      resolve: (s) => s.alerts,
    }),
    alertsDropped: t.exposeInt('alertsDropped', {
      description: 'Alerts this instance could not queue for storage (overload).',
    }),
  }),
});

builder.queryField('fraudAlerts', (t) =>
  t.field({
    type: [FraudAlertRef],
    description: `ADMIN. Newest first; of one competition, or of all when competitionId is null. first: 1..${ALERTS_MAX_FIRST} (default ${ALERTS_DEFAULT_FIRST}).`,
    authScopes: { admin: true },
    args: { competitionId: t.arg.id(), first: t.arg.int() },
    resolve: (_root, args, ctx) =>
      ctx.services.fraud.list(args.competitionId == null ? null : String(args.competitionId), args.first),
  }),
);

builder.queryField('fraudStats', (t) =>
  t.field({
    type: FraudStatsRef,
    description:
      'ADMIN. Allowed, flagged and blocked votes and reactions, and stored alerts by rule; everywhere when competitionId is null.',
    authScopes: { admin: true },
    args: { competitionId: t.arg.id() },
    resolve: (_root, args, ctx) =>
      ctx.services.fraud.stats(args.competitionId == null ? null : String(args.competitionId)),
  }),
);

builder.subscriptionField('fraudAlertRaised', (t) =>
  t.field({
    delivery: { kind: 'events', maxQueued: 100 },
    type: FraudAlertRef,
    description:
      'ADMIN. Alerts as they are stored, in seq order, live from subscribing (no snapshot) or after afterSeq; of every competition when competitionId is null (its own seq).',
    authScopes: { admin: true },
    args: { competitionId: t.arg.id(), afterSeq: t.arg.int({ description: AFTER_SEQ_DOC }) },
    subscribe: (_root, args, ctx) =>
      ctx.services.fraud.subscribe(args.competitionId == null ? null : String(args.competitionId), args.afterSeq),
    resolve: (event: FraudAlertEvent) => ({ ...event.data, seq: event.seq }),
  }),
);

const FraudAlertEventPageRef = eventPageRef<FraudAlertView, FraudAlertNode>(
  'FraudAlertEventPage',
  FraudAlertRef,
  (event) => ({ ...event.data, seq: event.seq }),
  'fraud alerts',
);

builder.queryField('fraudAlertEvents', (t) =>
  t.field({
    type: FraudAlertEventPageRef,
    description: 'ADMIN. Polling fallback of fraudAlertRaised: the alerts after afterSeq on that stream.',
    authScopes: { admin: true },
    args: {
      competitionId: t.arg.id(),
      afterSeq: t.arg.int({ description: POLL_AFTER_SEQ_DOC }),
      first: t.arg.int({ description: FIRST_DOC }),
    },
    guard: { rate: 'polls' },
    resolve: (_root, args, ctx) =>
      ctx.services.fraud.events(args.competitionId == null ? null : String(args.competitionId), {
        afterSeq: args.afterSeq,
        first: args.first,
      }),
  }),
);
