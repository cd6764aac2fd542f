import { CompetitionStatus, VotingMethod } from '../../generated/prisma/enums.js';
import { builder } from '../../schema/builder.js';
import type { RunoffResult } from '../voting/voting.rules.js';
import { RunoffResultRef, TallyEntryRef, VoteRef } from '../voting/voting.schema.js';

const VotingMethodEnum = builder.enumType(VotingMethod, { name: 'VotingMethod' });
const CompetitionStatusEnum = builder.enumType(CompetitionStatus, { name: 'CompetitionStatus' });

export const CompetitionRef = builder.prismaObject('Competition', {
  fields: (t) => ({
    id: t.exposeID('id'),
    title: t.exposeString('title'),
    votingMethod: t.expose('votingMethod', { type: VotingMethodEnum }),
    status: t.expose('status', { type: CompetitionStatusEnum }),
    creditsPerVoter: t.exposeInt('creditsPerVoter', {
      nullable: true,
      description: 'QUADRATIC only: credits each voter may spend; v votes on one submission cost v*v credits.',
    }),
    openedAt: t.expose('openedAt', { type: 'DateTime', nullable: true }),
    closedAt: t.expose('closedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    submissions: t.relation('submissions', { query: { orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] } }),
    runoff: t.field({
      type: RunoffResultRef,
      nullable: true,
      description: 'RANKED, once CLOSED: the instant-runoff winner and its rounds.',
      resolve: (competition) => (competition.runoffResult as unknown as RunoffResult | null) ?? null,
    }),
    leaderboard: t.field({
      type: [TallyEntryRef],
      description: 'Exact standings, recounted from the stored ballots.',
      resolve: (competition, _args, ctx) => ctx.services.voting.leaderboard(competition.id),
    }),
  }),
});

export const SubmissionRef = builder.prismaObject('Submission', {
  fields: (t) => ({
    id: t.exposeID('id'),
    competitionId: t.exposeID('competitionId'),
    title: t.exposeString('title'),
    founder: t.relation('founder', { nullable: true }),
  }),
});

// Submissions beside the voting types (voting.schema.ts cannot import SubmissionRef: this file
// imports it). Both read the submission cache: a tally's entries cost no query per entry.
builder.objectField(TallyEntryRef, 'submission', (t) =>
  t.field({
    type: SubmissionRef,
    resolve: (entry, _args, ctx) => ctx.services.competitions.submission(entry.submissionId),
  }),
);

builder.objectField(VoteRef, 'submission', (t) =>
  t.field({
    type: SubmissionRef,
    nullable: true,
    description:
      'SIMPLE and QUADRATIC: the submission voted on. Null for RANKED and APPROVAL ballots, which are on several.',
    resolve: (vote, _args, ctx) =>
      vote.submissionId === null ? null : ctx.services.competitions.submission(vote.submissionId),
  }),
);

const CreateCompetitionInput = builder.inputType('CreateCompetitionInput', {
  fields: (t) => ({
    title: t.string({ required: true }),
    votingMethod: t.field({ type: VotingMethodEnum, required: true }),
    creditsPerVoter: t.int(),
  }),
});

const CreateSubmissionInput = builder.inputType('CreateSubmissionInput', {
  fields: (t) => ({
    competitionId: t.id({ required: true }),
    title: t.string({ required: true }),
    founderId: t.id(),
  }),
});

builder.queryField('competitions', (t) =>
  t.prismaField({
    type: ['Competition'],
    description: 'Newest first; only those with this status when given. first: 1..100 (default 50).',
    args: { status: t.arg({ type: CompetitionStatusEnum }), first: t.arg.int() },
    resolve: (query, _root, { status, first }, ctx) => ctx.services.competitions.list({ status, first }, query),
  }),
);

builder.queryField('competition', (t) =>
  t.prismaField({
    type: 'Competition',
    nullable: true,
    args: { id: t.arg.id({ required: true }) },
    resolve: (query, _root, { id }, ctx) => ctx.prisma.competition.findUnique({ ...query, where: { id: String(id) } }),
  }),
);

builder.mutationFields((t) => ({
  createCompetition: t.field({
    type: CompetitionRef,
    description: 'ADMIN',
    authScopes: { admin: true },
    guard: { rate: 'competitions' },
    args: { input: t.arg({ type: CreateCompetitionInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.competitions.create(input, ctx.viewer!.id),
  }),
  createSubmission: t.field({
    type: SubmissionRef,
    description: 'ADMIN',
    authScopes: { admin: true },
    guard: { rate: 'competitions' },
    args: { input: t.arg({ type: CreateSubmissionInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.competitions.addSubmission({
        competitionId: String(input.competitionId),
        title: input.title,
        founderId: input.founderId == null ? null : String(input.founderId),
      }),
  }),
  openCompetition: t.field({
    type: CompetitionRef,
    description: 'ADMIN',
    authScopes: { admin: true },
    guard: { rate: 'competitions' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.competitions.open(String(id)),
  }),
  closeCompetition: t.field({
    type: CompetitionRef,
    description: 'ADMIN',
    authScopes: { admin: true },
    guard: { rate: 'competitions' },
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => ctx.services.competitions.close(String(id)),
  }),
}));
