import { CompetitionStatus } from '../../generated/prisma/enums.js';
import { builder } from '../../schema/builder.js';
import { snapshotThenLive } from '../../realtime/stream.js';
import type { RunoffResult, RunoffRound, RunoffTally } from './voting.rules.js';
import type { TallyEntry } from './voting.rules.js';
import type { TallyEvent } from './voting.events.js';
import { untilClosed } from './voting.stream.js';
import type { CastVoteResult, VoteView } from './voting.service.js';

export const TallyEntryRef = builder.objectRef<TallyEntry>('TallyEntry').implement({
  description: [
    'score: SIMPLE and APPROVAL = number of votes/approvals; QUADRATIC = sum of votes;',
    'RANKED = Borda points: with n submissions in the competition, the submission at position i',
    "(1-based) of a ballot gets n - i points, unranked ones 0; score sums every ballot's points.",
    'votes: number of voters whose current ballot gives this submission anything (votes > 0, ranked,',
    'approved; a RANKED ballot counts for every submission it lists, the 0-point last place too).',
    'rank: 1 = leading by score; equal scores share a rank (1, 1, 3).',
  ].join('\n'),
  fields: (t) => ({
    submissionId: t.exposeID('submissionId'),
    votes: t.exposeInt('votes'),
    score: t.exposeFloat('score'),
    rank: t.exposeInt('rank'),
    votesLastMinute: t.int({
      description: 'Momentum: ballot changes that gave this submission something in the last 60 seconds.',
      resolve: (entry) => entry.votesLastMinute ?? 0,
    }),
    momentum: t.int({
      description: 'votesLastMinute minus the same count for the minute before (positive = rising).',
      resolve: (entry) => entry.momentum ?? 0,
    }),
  }),
});

const RunoffTallyRef = builder.objectRef<RunoffTally>('RunoffTally').implement({
  fields: (t) => ({
    submissionId: t.exposeID('submissionId'),
    votes: t.exposeInt('votes'),
  }),
});

const RunoffRoundRef = builder.objectRef<RunoffRound>('RunoffRound').implement({
  fields: (t) => ({
    round: t.exposeInt('round'),
    tallies: t.field({
      type: [RunoffTallyRef],
      description: 'Submissions still in the race, most votes first.',
      resolve: (r) => r.tallies,
    }),
    eliminated: t.exposeIDList('eliminated', { description: 'Eliminated at the end of this round.' }),
    exhaustedBallots: t.exposeInt('exhaustedBallots', {
      description: 'Ballots whose ranked submissions are all eliminated.',
    }),
  }),
});

export const RunoffResultRef = builder.objectRef<RunoffResult>('RunoffResult').implement({
  description: [
    'Instant-runoff result of a RANKED competition, computed from the final ballots when it closed.',
    'Each round counts every ballot for its highest-ranked remaining submission; more than half of the',
    'ballots in play wins; otherwise the fewest votes is eliminated (ties: fewer first-round votes, then',
    'the greater submissionId).',
  ].join('\n'),
  fields: (t) => ({
    winnerId: t.exposeID('winnerId', { nullable: true, description: 'Null when nobody voted.' }),
    rounds: t.field({ type: [RunoffRoundRef], resolve: (r) => r.rounds }),
  }),
});

const TallyUpdateRef = builder.objectRef<TallyEvent>('TallyUpdate').implement({
  fields: (t) => ({
    competitionId: t.id({ resolve: (event) => event.data.competitionId }),
    status: t.field({
      type: CompetitionStatus,
      description:
        "The competition's status. CLOSED: these standings are final and the stream completes after this update.",
      resolve: (event) => event.data.status,
    }),
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

/** Vote.submission is added in competitions.schema.ts, beside Submission. */
export const VoteRef = builder.objectRef<VoteView>('Vote').implement({
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
    "QUADRATIC: submissionId + votes (sets this voter's votes on it; total cost within budget).",
    "RANKED: ranking (the voter's full ordered ballot, replaces the previous one).",
    'APPROVAL: approvals (the set of approved submissions, replaces the previous set).',
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
    guard: {
      rate: 'votes',
      fraud: {
        kind: 'vote',
        subject: ({ input }) => ({
          competitionId: String(input.competitionId),
          submissionIds: [input.submissionId, ...(input.ranking ?? []), ...(input.approvals ?? [])]
            .filter((id) => id != null)
            .map(String),
          // QUADRATIC: the allocation is part of the ballot (adjusting it is not a repeat).
          votes: input.votes ?? null,
        }),
      },
    },
    args: { input: t.arg({ type: CastVoteInput, required: true }) },
    resolve: (_root, { input }, ctx) => {
      return ctx.services.voting.castVote(ctx.viewer!, {
        competitionId: String(input.competitionId),
        submissionId: input.submissionId == null ? null : String(input.submissionId),
        votes: input.votes ?? null,
        ranking: input.ranking?.map(String) ?? null,
        approvals: input.approvals?.map(String) ?? null,
        idempotencyKey: input.idempotencyKey ?? null,
      });
    },
  }),
);

builder.queryField('tally', (t) =>
  t.field({
    type: TallyUpdateRef,
    description:
      'The current standings as tallyUpdated delivers them (seq of the latest published update): what a client that cannot stream polls.',
    args: { competitionId: t.arg.id({ required: true }) },
    guard: { rate: 'polls' },
    resolve: async (_root, { competitionId }, ctx) => {
      const id = String(competitionId);
      await ctx.services.competitions.require(id);
      return ctx.services.tallies.snapshot(id);
    },
  }),
);

builder.subscriptionField('tallyUpdated', (t) =>
  t.field({
    delivery: { kind: 'snapshot', shared: true },
    type: TallyUpdateRef,
    description: [
      'The current standings first, then at most one update per TALLY_FLUSH_MS while votes arrive, and one when the status changes.',
      'When the competition closes: a final update with status CLOSED (every vote acknowledged before the close counted), then the',
      'stream completes; subscribing to a CLOSED competition yields its final standings and completes at once.',
    ].join(' '),
    args: { competitionId: t.arg.id({ required: true }) },
    subscribe: async (_root, { competitionId }, ctx) => {
      const id = String(competitionId);
      await ctx.services.competitions.require(id);
      const { bus, tallies } = ctx.services;
      return untilClosed(snapshotThenLive(bus.subscribe('tally', id, { conflate: true }), () => tallies.snapshot(id)));
    },
    resolve: (event) => event,
  }),
);
