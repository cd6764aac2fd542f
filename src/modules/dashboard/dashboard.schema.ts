import { builder } from '../../schema/builder.js';
import { everyInterval } from '../../realtime/stream.js';
import { TallyEntryRef } from '../voting/voting.schema.js';
import type { Dashboard } from './dashboard.service.js';

const DASHBOARD_INTERVAL_MS = 1_000;

const LiveDashboardRef = builder.objectRef<Dashboard>('LiveDashboard').implement({
  description: "An event producer's live screen for a competition (and optionally one of its sessions).",
  fields: (t) => ({
    competitionId: t.exposeID('competitionId'),
    sessionId: t.exposeID('sessionId', { nullable: true }),
    generatedAt: t.expose('generatedAt', { type: 'DateTime' }),
    totalVotes: t.exposeInt('totalVotes'),
    votesPerSecond: t.exposeFloat('votesPerSecond', {
      description: 'Ballot actions per second over the last 10 seconds.',
    }),
    votesLastMinute: t.exposeInt('votesLastMinute'),
    activeViewers: t.exposeInt('activeViewers', {
      description: 'Live tallyUpdated subscribers on every instance and transport.',
    }),
    reactionsPerSecond: t.exposeFloat('reactionsPerSecond', {
      nullable: true,
      description: 'Only when a sessionId was given.',
    }),
    topMovers: t.field({
      type: [TallyEntryRef],
      description: 'Up to 3 submissions rising fastest (momentum > 0).',
      resolve: (d) => d.topMovers,
    }),
    leaderboard: t.field({ type: [TallyEntryRef], resolve: (d) => d.leaderboard }),
  }),
});

builder.queryField('liveDashboard', (t) =>
  t.field({
    type: LiveDashboardRef,
    description: 'ADMIN',
    authScopes: { admin: true },
    args: { competitionId: t.arg.id({ required: true }), sessionId: t.arg.id() },
    resolve: (_root, args, ctx) =>
      ctx.services.dashboard.snapshot(
        String(args.competitionId),
        args.sessionId == null ? null : String(args.sessionId),
      ),
  }),
);

builder.subscriptionField('dashboardUpdated', (t) =>
  t.field({
    delivery: { kind: 'snapshot' },
    type: LiveDashboardRef,
    description: 'ADMIN. The live dashboard, refreshed every second.',
    authScopes: { admin: true },
    args: { competitionId: t.arg.id({ required: true }), sessionId: t.arg.id() },
    subscribe: async (_root, args, ctx) => {
      const competitionId = String(args.competitionId);
      const sessionId = args.sessionId == null ? null : String(args.sessionId);
      const read = () => ctx.services.dashboard.snapshot(competitionId, sessionId);
      await read(); // NOT_FOUND before the stream starts
      return everyInterval(read, DASHBOARD_INTERVAL_MS);
    },
    resolve: (dashboard) => dashboard,
  }),
);
