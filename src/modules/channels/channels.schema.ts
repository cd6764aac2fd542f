/**
 * Live channels: channelEvents (history after a seq: polling and catch-up), channelEvent (replay
 * then live), publishToChannel (ADMIN). Public to read except `admin:` channels (ADMIN);
 * `activity:` channels are written by the server only. channelEvent is not a shared
 * subscription: its replay depends on afterSeq and its access on the viewer.
 */
import { builder } from '../../schema/builder.js';
import type { ChannelEventView } from './channels.events.js';
import type { ChannelHistory } from './channels.service.js';

const ChannelEventRef = builder.objectRef<ChannelEventView>('ChannelEvent').implement({
  description: 'One event of a named live channel.',
  fields: (t) => ({
    channel: t.exposeString('channel'),
    seq: t.exposeInt('seq', { description: 'Strictly increasing per channel, from 1; no gaps except pruned history.' }),
    type: t.exposeString('type'),
    data: t.field({ type: 'JSON', resolve: (e) => e.data }),
    createdAt: t.field({ type: 'DateTime', resolve: (e) => e.createdAt }),
  }),
});

const ChannelHistoryRef = builder.objectRef<ChannelHistory>('ChannelHistory').implement({
  description: 'Events after a seq (oldest first). Keep the last seq you processed and pass it as afterSeq next time.',
  fields: (t) => ({
    channel: t.exposeString('channel'),
    events: t.field({ type: [ChannelEventRef], resolve: (h) => h.events }),
    latestSeq: t.exposeInt('latestSeq', { description: "The channel's latest seq (0: nothing published yet)." }),
    oldestSeq: t.exposeInt('oldestSeq', {
      nullable: true,
      description: 'The oldest seq still kept (history is bounded), null when empty.',
    }),
    missed: t.exposeBoolean('missed', {
      description:
        'Events after afterSeq were pruned: reload the state the channel describes, then continue from latestSeq.',
    }),
    hasMore: t.exposeBoolean('hasMore', {
      description: 'More events follow: ask again with afterSeq = the last returned seq.',
    }),
  }),
});

builder.queryField('channelEvents', (t) =>
  t.field({
    type: ChannelHistoryRef,
    description: [
      'Events of a channel with seq > afterSeq (default 0), oldest first; first 1..200, default 100.',
      'Channel names: [a-z0-9:_-]{1,100}. Public, except admin:* (ADMIN).',
      'A competition\'s activity feed is "activity:<competitionId>".',
    ].join(' '),
    args: { channel: t.arg.string({ required: true }), afterSeq: t.arg.int(), first: t.arg.int() },
    guard: { rate: 'polls' },
    resolve: (_root, { channel, afterSeq, first }, ctx) =>
      ctx.services.channels.history(ctx.viewer, channel, { afterSeq, first }),
  }),
);

builder.mutationField('publishToChannel', (t) =>
  t.field({
    type: ChannelEventRef,
    description:
      'ADMIN. type: [A-Za-z0-9:_.-]{1,100}; data: JSON up to 16 KiB. activity:* channels are written by the server only.',
    authScopes: { admin: true },
    guard: { rate: 'channels' },
    args: {
      channel: t.arg.string({ required: true }),
      type: t.arg.string({ required: true }),
      data: t.arg({ type: 'JSON' }),
    },
    resolve: (_root, { channel, type, data }, ctx) => ctx.services.channels.publishAsAdmin(channel, type, data),
  }),
);

builder.subscriptionField('channelEvent', (t) =>
  t.field({
    delivery: { kind: 'events', maxQueued: 100 },
    type: ChannelEventRef,
    description: [
      'With afterSeq: every kept event after it (oldest first), then live ones; without: live ones from now.',
      'Seqs strictly increase, with no gap and no duplicate (a first seq above afterSeq + 1 means history was pruned).',
    ].join(' '),
    args: { channel: t.arg.string({ required: true }), afterSeq: t.arg.int() },
    subscribe: (_root, { channel, afterSeq }, ctx) => ctx.services.channels.subscribe(ctx.viewer, channel, afterSeq),
    resolve: (event) => event.data,
  }),
);
