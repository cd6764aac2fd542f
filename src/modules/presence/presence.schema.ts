import { builder } from '../../schema/builder.js';
import type { PresenceView } from './presence.rules.js';
import { MAX_FOLLOWING_WATCHED, MAX_PRESENCE_IDS, MAX_STATUS_MESSAGE } from './presence.service.js';

const PresenceStatusEnum = builder.enumType('PresenceStatus', {
  values: {
    ONLINE: { description: 'Connected, with an operation within PRESENCE_AWAY_AFTER_MS.' },
    AWAY: { description: 'Connected but idle for PRESENCE_AWAY_AFTER_MS, or set by hand.' },
    DND: { description: 'Do not disturb: set by hand, held while connected.' },
    OFFLINE: { description: 'No live connection for PRESENCE_OFFLINE_GRACE_MS.' },
  } as const,
});

const PresenceRef = builder.objectRef<PresenceView>('Presence').implement({
  fields: (t) => ({
    userId: t.exposeID('userId'),
    status: t.field({ type: PresenceStatusEnum, resolve: (p) => p.status }),
    statusMessage: t.exposeString('statusMessage', {
      nullable: true,
      description: 'Set with setPresence; cleared when the user goes OFFLINE.',
    }),
    connections: t.exposeInt('connections', {
      description: 'Live connections of this user across every instance and transport.',
    }),
    lastSeenAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: "When the user's last connection ended; null while one is live (or if never seen).",
      resolve: (p) => p.lastSeenAt,
    }),
  }),
});

builder.queryFields((t) => ({
  presence: t.field({
    type: [PresenceRef],
    description: `One Presence per id (1..${MAX_PRESENCE_IDS}), in order; a user never seen is OFFLINE.`,
    args: { userIds: t.arg.idList({ required: true }) },
    resolve: (_root, { userIds }, ctx) => ctx.services.presence.presence(userIds.map(String)),
  }),
  following: t.prismaField({
    type: ['User'],
    description: `The people you follow, newest first (first: default 100, at most ${MAX_FOLLOWING_WATCHED}).`,
    authScopes: { authenticated: true },
    args: { first: t.arg.int() },
    resolve: (_query, _root, { first }, ctx) => ctx.services.presence.following(ctx.viewer!.id, first),
  }),
  followers: t.prismaField({
    type: ['User'],
    description: `The people who follow you, newest first (first: default 100, at most ${MAX_FOLLOWING_WATCHED}).`,
    authScopes: { authenticated: true },
    args: { first: t.arg.int() },
    resolve: (_query, _root, { first }, ctx) => ctx.services.presence.followers(ctx.viewer!.id, first),
  }),
  onlineFollowing: t.field({
    type: [PresenceRef],
    description: `Who among the people you follow is not OFFLINE (AWAY and DND included); the newest ${MAX_FOLLOWING_WATCHED} follows.`,
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.services.presence.onlineFollowing(ctx.viewer!.id),
  }),
}));

builder.mutationFields((t) => ({
  setPresence: t.field({
    type: PresenceRef,
    description: `Sets DND, AWAY or ONLINE (clears DND/AWAY) and the status message (trimmed, at most ${MAX_STATUS_MESSAGE} characters; omitted keeps it, null or blank clears it). Held while connected; OFFLINE is not settable (BAD_USER_INPUT); with no live connection: CONFLICT.`,
    authScopes: { authenticated: true },
    guard: { rate: 'presence' },
    args: { status: t.arg({ type: PresenceStatusEnum, required: true }), statusMessage: t.arg.string() },
    resolve: (_root, { status, statusMessage }, ctx) =>
      ctx.services.presence.setPresence(ctx.viewer!.id, status, statusMessage),
  }),
  follow: t.prismaField({
    type: 'User',
    description: 'Follows a user (idempotent). Yourself: BAD_USER_INPUT; an unknown user: NOT_FOUND.',
    authScopes: { authenticated: true },
    guard: { rate: 'presence' },
    args: { userId: t.arg.id({ required: true }) },
    resolve: (_query, _root, { userId }, ctx) => ctx.services.presence.follow(ctx.viewer!.id, String(userId)),
  }),
  unfollow: t.prismaField({
    type: 'User',
    description: 'Stops following a user (idempotent). An unknown user: NOT_FOUND.',
    authScopes: { authenticated: true },
    guard: { rate: 'presence' },
    args: { userId: t.arg.id({ required: true }) },
    resolve: (_query, _root, { userId }, ctx) => ctx.services.presence.unfollow(ctx.viewer!.id, String(userId)),
  }),
}));

builder.subscriptionFields((t) => ({
  presenceChanged: t.field({
    delivery: { kind: 'events', maxQueued: 200 },
    type: PresenceRef,
    description: `The current Presence of every id (1..${MAX_PRESENCE_IDS}) first, then each change of any of them.`,
    args: { userIds: t.arg.idList({ required: true }) },
    subscribe: (_root, { userIds }, ctx) => ctx.services.presence.changes(userIds.map(String)),
    resolve: (view) => view,
  }),
  followingPresenceChanged: t.field({
    delivery: { kind: 'events', maxQueued: 200 },
    type: PresenceRef,
    description: `presenceChanged over the people you follow when the subscription starts (the newest ${MAX_FOLLOWING_WATCHED}); subscribe again after follow/unfollow.`,
    authScopes: { authenticated: true },
    subscribe: (_root, _args, ctx) => ctx.services.presence.followingChanges(ctx.viewer!.id),
    resolve: (view) => view,
  }),
}));
