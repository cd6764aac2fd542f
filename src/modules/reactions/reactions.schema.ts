import { ReactionType } from '../../generated/prisma/enums.js';
import { builder } from '../../schema/builder.js';
import { AFTER_SEQ_DOC, FIRST_DOC, POLL_AFTER_SEQ_DOC, eventPageRef } from '../../schema/event-page.js';
import type { ReactionBurstData, ReactionBurstEvent } from './reactions.events.js';
import { STATS_MAX_SECONDS, type ReactionStats } from './reactions.service.js';

const HEATMAP_DOC =
  'Row-major 8 × 8 grid of reaction counts over the screen: heatmap[row][column], rows by y top to bottom, ' +
  'columns by x left to right, cell = min(7, floor(v * 8)) (x = 1 or y = 1 is the last cell). ' +
  'Reactions sent without a position count in total and counts but in no cell.';

const ReactionTypeEnum = builder.enumType(ReactionType, { name: 'ReactionType' });

const ReactionCountRef = builder.objectRef<{ type: ReactionType; count: number }>('ReactionCount').implement({
  fields: (t) => ({
    type: t.expose('type', { type: ReactionTypeEnum }),
    count: t.exposeInt('count', { description: 'Reactions of this type (each counts 1, whatever its intensity).' }),
  }),
});

const ReactionBurstRef = builder.objectRef<ReactionBurstEvent>('ReactionBurst').implement({
  description:
    'The reactions of one REACTION_WINDOW_MS window of a session, published once, only for windows that had reactions.',
  fields: (t) => ({
    sessionId: t.id({ resolve: (event) => event.data.sessionId }),
    seq: t.exposeInt('seq', {
      description: 'Strictly increasing per session across instances; one per published window.',
    }),
    publishedAt: t.field({ type: 'DateTime', resolve: (event) => event.publishedAt }),
    windowStart: t.field({
      type: 'DateTime',
      description:
        'Start of the window (windows are aligned to the server clock: [windowStart, windowStart + windowMs)).',
      resolve: (event) => event.data.windowStart,
    }),
    windowMs: t.int({ resolve: (event) => event.data.windowMs }),
    total: t.int({ description: 'Reactions in the window.', resolve: (event) => event.data.total }),
    intensity: t.int({
      description: 'Sum of the intensities (1..10) of the reactions in the window; intensity / total is the mean.',
      resolve: (event) => event.data.intensity,
    }),
    counts: t.field({
      type: [ReactionCountRef],
      description: 'Every ReactionType (CLAP, FIRE, HEART, WOW, LAUGH in this order), zeros included.',
      resolve: (event) => event.data.counts,
    }),
    heatmap: t.field({
      type: t.listRef(t.listRef('Int')),
      description: HEATMAP_DOC,
      resolve: (event) => event.data.heatmap,
    }),
  }),
});

const ReactionStatsRef = builder.objectRef<ReactionStats>('ReactionStats').implement({
  description: 'Sums of the durable per-window aggregates of a session over completed windows.',
  fields: (t) => ({
    sessionId: t.exposeID('sessionId'),
    since: t.expose('since', { type: 'DateTime', description: 'Start of the first window counted (inclusive).' }),
    until: t.expose('until', { type: 'DateTime', description: 'End of the last window counted (exclusive).' }),
    windows: t.exposeInt('windows', { description: 'Windows that had reactions.' }),
    total: t.exposeInt('total'),
    reactionsPerSecond: t.exposeFloat('reactionsPerSecond', { description: 'total / (until - since) in seconds.' }),
    counts: t.field({ type: [ReactionCountRef], resolve: (stats) => stats.counts }),
    heatmap: t.field({
      type: t.listRef(t.listRef('Int')),
      description: HEATMAP_DOC,
      resolve: (stats) => stats.heatmap,
    }),
  }),
});

const SendReactionInput = builder.inputType('SendReactionInput', {
  fields: (t) => ({
    sessionId: t.id({ required: true }),
    type: t.field({ type: ReactionTypeEnum, required: true }),
    intensity: t.int({ required: true, description: '1..10' }),
    x: t.float({ description: 'Normalised screen position, 0..1 (send x and y together, or neither).' }),
    y: t.float(),
  }),
});

builder.mutationField('sendReaction', (t) =>
  t.boolean({
    description:
      'Counts one reaction in the current window of a LIVE session (CONFLICT with reason SESSION_NOT_LIVE otherwise).',
    authScopes: { authenticated: true },
    guard: {
      rate: 'reactions',
      fraud: { kind: 'reaction', subject: ({ input }) => ({ sessionId: String(input.sessionId) }) },
    },
    args: { input: t.arg({ type: SendReactionInput, required: true }) },
    resolve: async (_root, { input }, ctx) =>
      Boolean(
        await ctx.services.reactions.send(ctx.viewer!, {
          sessionId: String(input.sessionId),
          type: input.type,
          intensity: input.intensity,
          x: input.x,
          y: input.y,
        }),
      ),
  }),
);

builder.queryField('reactionStats', (t) =>
  t.field({
    type: ReactionStatsRef,
    description: `Reactions of the completed windows of the last lastSeconds (1..${STATS_MAX_SECONDS}, default 60), from the durable per-window aggregates.`,
    args: {
      sessionId: t.arg.id({ required: true }),
      lastSeconds: t.arg.int({ defaultValue: 60 }),
    },
    resolve: (_root, { sessionId, lastSeconds }, ctx) =>
      ctx.services.reactions.stats(String(sessionId), lastSeconds ?? 60),
  }),
);

builder.subscriptionField('reactions', (t) =>
  t.field({
    delivery: { kind: 'events', maxQueued: 64, shared: true },
    type: ReactionBurstRef,
    description:
      'One burst per REACTION_WINDOW_MS window that had reactions, in seq order: live from subscribing (no snapshot), or after afterSeq; anyone may watch.',
    args: { sessionId: t.arg.id({ required: true }), afterSeq: t.arg.int({ description: AFTER_SEQ_DOC }) },
    subscribe: (_root, { sessionId, afterSeq }, ctx) => ctx.services.reactions.subscribe(String(sessionId), afterSeq),
    resolve: (event) => event,
  }),
);

const ReactionEventPageRef = eventPageRef<ReactionBurstData, ReactionBurstEvent>(
  'ReactionEventPage',
  ReactionBurstRef,
  (event) => event,
  'reaction bursts',
);

builder.queryField('reactionEvents', (t) =>
  t.field({
    type: ReactionEventPageRef,
    description: 'Polling fallback of reactions: the bursts after afterSeq; anyone may read.',
    args: {
      sessionId: t.arg.id({ required: true }),
      afterSeq: t.arg.int({ description: POLL_AFTER_SEQ_DOC }),
      first: t.arg.int({ description: FIRST_DOC }),
    },
    guard: { rate: 'polls' },
    resolve: (_root, { sessionId, afterSeq, first }, ctx) =>
      ctx.services.reactions.events(String(sessionId), { afterSeq, first }),
  }),
);
