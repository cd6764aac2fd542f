import { builder } from '../../schema/builder.js';
import { snapshotThenLive } from '../../realtime/stream.js';
import type { TallyEntry } from './tally.js';
import type { TallyEvent } from './voting.events.js';
import type { CastVoteResult } from './voting.service.js';

export const TallyEntryRef = builder.objectRef<TallyEntry>('TallyEntry').implement({
  description: [
    'score: SIMPLE and APPROVAL = number of votes/approvals; QUADRATIC = sum of votes;',
    'RANKED = Borda points. votes: number of voters whose current ballot gives this submission anything.',
    'rank: 1 = leading by score; equal scores share a rank (1, 1, 3).',
  ].join('\n'),
  fields: (t) => ({
    submissionId: t.exposeID('submissionId'),
    votes: t.exposeInt('votes'),
    score: t.exposeFloat('score'),
    rank: t.exposeInt('rank'),
  }),
});

const TallyUpdateRef = builder.objectRef<TallyEvent>('TallyUpdate').implement({
  fields: (t) => ({
    competitionId: t.id({ resolve: (event) => event.data.competitionId }),
    seq: t.exposeInt('seq', { description: 'Strictly increasing per competition.' }),
    publishedAt: t.field({
      type: 'DateTime',
      description: 'Server time at which this update was published.',
      resolve: (event) => event.publishedAt,
    }),
    totalVotes: t.int({ description: "The sum of the entries' votes.", resolve: (event) => event.data.totalVotes }),
    entries: t.field({
      type: [TallyEntryRef],
      description: 'One entry per submission of the competition (zeros included), sorted by rank, then submissionId.',
      resolve: (event) => event.data.entries,
    }),
  }),
});

const VoteRef = builder.prismaObject('Vote', {
  fields: (t) => ({
    id: t.exposeID('id'),
    competitionId: t.exposeID('competitionId'),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const CastVotePayload = builder.objectRef<CastVoteResult>('CastVotePayload').implement({
  fields: (t) => ({
    vote: t.field({ type: VoteRef, resolve: (result) => result.vote }),
    creditsRemaining: t.exposeInt('creditsRemaining', {
      nullable: true,
      description: 'QUADRATIC only: credits this voter has left in this competition.',
    }),
  }),
});

const CastVoteInput = builder.inputType('CastVoteInput', {
  description: [
    'One ballot action. SIMPLE: submissionId (one vote per voter per submission).',
    'Retrying with the same idempotencyKey never counts twice.',
  ].join('\n'),
  fields: (t) => ({
    competitionId: t.id({ required: true }),
    submissionId: t.id(),
    votes: t.int(),
    ranking: t.idList(),
    approvals: t.idList(),
    idempotencyKey: t.string(),
  }),
});

builder.queryField('leaderboard', (t) =>
  t.field({
    type: [TallyEntryRef],
    args: { competitionId: t.arg.id({ required: true }) },
    resolve: (_root, { competitionId }, ctx) => ctx.services.voting.leaderboard(String(competitionId)),
  }),
);

builder.mutationField('castVote', (t) =>
  t.field({
    type: CastVotePayload,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: CastVoteInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.voting.castVote(ctx.viewer!, {
        competitionId: String(input.competitionId),
        submissionId: input.submissionId == null ? null : String(input.submissionId),
        votes: input.votes ?? null,
        ranking: input.ranking?.map(String) ?? null,
        approvals: input.approvals?.map(String) ?? null,
        idempotencyKey: input.idempotencyKey ?? null,
      }),
  }),
);

builder.subscriptionField('tallyUpdated', (t) =>
  t.field({
    type: TallyUpdateRef,
    description: 'The current standings first, then at most one update per TALLY_FLUSH_MS while votes arrive.',
    args: { competitionId: t.arg.id({ required: true }) },
    subscribe: async (_root, { competitionId }, ctx) => {
      const id = String(competitionId);
      await ctx.services.competitions.require(id);
      const { bus, tallies } = ctx.services;
      return snapshotThenLive(bus.subscribe('tally', id, { conflate: true }), () => tallies.snapshot(id));
    },
    resolve: (event) => event,
  }),
);
