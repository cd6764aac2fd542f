/**
 * The audience investment pool: investmentPool and investmentPoolUpdated are public, like the
 * stage they happen on; pledge and myPledges need a signed-in user (a founder cannot back their
 * own submission: the service checks it).
 */
import { builder } from '../../schema/builder.js';
import type { PoolEntry, PoolEvent } from './pool.events.js';
import type { MyPledges, PledgeResult } from './pool.service.js';
const PoolEntryRef = builder.objectRef<PoolEntry>('InvestmentPoolEntry').implement({
  fields: (t) => ({
    submissionId: t.exposeID('submissionId'),
    amount: t.exposeFloat('amount', { description: 'Sum of the pledges on this submission.' }),
    backers: t.exposeInt('backers', { description: 'Users with a pledge on this submission.' }),
  }),
});

const InvestmentPoolRef = builder.objectRef<PoolEvent>('InvestmentPool').implement({
  description: "A session's audience investment pool: virtual pledges per submission.",
  fields: (t) => ({
    sessionId: t.id({ resolve: (e) => e.data.sessionId }),
    seq: t.exposeInt('seq', {
      description: 'Strictly increasing per session; a higher seq never carries older totals.',
    }),
    publishedAt: t.field({ type: 'DateTime', resolve: (e) => e.publishedAt }),
    budgetPerBacker: t.int({
      description: "Each user's pledge budget in this session.",
      resolve: (e) => e.data.budgetPerBacker,
    }),
    totalAmount: t.float({ resolve: (e) => e.data.totalAmount }),
    backers: t.int({ description: 'Distinct users with any pledge in the session.', resolve: (e) => e.data.backers }),
    entries: t.field({
      type: [PoolEntryRef],
      description: "The running order's submissions (zeros included), in running order.",
      resolve: (e) => e.data.entries,
    }),
  }),
});

const PledgePayloadRef = builder.objectRef<PledgeResult>('PledgePayload').implement({
  fields: (t) => ({
    sessionId: t.exposeID('sessionId'),
    submissionId: t.exposeID('submissionId'),
    amount: t.exposeInt('amount', { description: "The caller's pledge on this submission now." }),
    budget: t.exposeInt('budget'),
    remaining: t.exposeInt('remaining', { description: 'What the caller has left to pledge in this session.' }),
    pool: t.field({ type: InvestmentPoolRef, resolve: (r) => r.pool }),
  }),
});

const PledgeRef = builder.objectRef<MyPledges['pledges'][number]>('Pledge').implement({
  fields: (t) => ({
    submissionId: t.exposeID('submissionId'),
    amount: t.exposeInt('amount'),
    updatedAt: t.field({ type: 'DateTime', resolve: (p) => p.updatedAt }),
  }),
});

const MyPledgesRef = builder.objectRef<MyPledges>('MyPledges').implement({
  fields: (t) => ({
    sessionId: t.exposeID('sessionId'),
    budget: t.exposeInt('budget'),
    pledged: t.exposeInt('pledged'),
    remaining: t.exposeInt('remaining'),
    pledges: t.field({ type: [PledgeRef], resolve: (m) => m.pledges }),
  }),
});

const PledgeInput = builder.inputType('PledgeInput', {
  description:
    "Sets (not adds) the caller's pledge on the submission; 0 removes it. The caller's total in the session stays within its budget.",
  fields: (t) => ({
    sessionId: t.id({ required: true }),
    submissionId: t.id({ required: true }),
    amount: t.int({ required: true }),
  }),
});

builder.queryFields((t) => ({
  investmentPool: t.field({
    type: InvestmentPoolRef,
    description: 'Public.',
    args: { sessionId: t.arg.id({ required: true }) },
    resolve: (_root, { sessionId }, ctx) => ctx.services.investmentPool.snapshot(String(sessionId)),
  }),
  myPledges: t.field({
    type: MyPledgesRef,
    authScopes: { authenticated: true },
    args: { sessionId: t.arg.id({ required: true }) },
    resolve: (_root, { sessionId }, ctx) => ctx.services.investmentPool.mine(ctx.viewer!, String(sessionId)),
  }),
}));

builder.mutationField('pledge', (t) =>
  t.field({
    type: PledgePayloadRef,
    description: 'Signed-in users; not on a submission one founded. BUDGET_EXCEEDED carries extensions.remaining.',
    authScopes: { authenticated: true },
    guard: { rate: 'pledges' },
    args: { input: t.arg({ type: PledgeInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.investmentPool.pledge(ctx.viewer!, {
        sessionId: String(input.sessionId),
        submissionId: String(input.submissionId),
        amount: input.amount,
      }),
  }),
);

builder.subscriptionField('investmentPoolUpdated', (t) =>
  t.field({
    delivery: { kind: 'snapshot', shared: true },
    type: InvestmentPoolRef,
    description:
      'The pool now, then after every pledge that changes it (conflated: a slow watcher skips to the latest). Public.',
    args: { sessionId: t.arg.id({ required: true }) },
    subscribe: (_root, { sessionId }, ctx) => ctx.services.investmentPool.subscribe(String(sessionId)),
    resolve: (event) => event,
  }),
);
