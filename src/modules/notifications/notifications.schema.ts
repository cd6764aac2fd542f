/**
 * Notifications: the viewer's own (query, markNotificationsRead, notificationAdded) and the
 * ADMIN senders (sendNotification, announce). notificationAdded differs per viewer: it is never
 * registered as a shared subscription.
 */
import { NotificationPriority } from '../../generated/prisma/enums.js';
import { builder } from '../../schema/builder.js';
import { FIRST_DOC, POLL_AFTER_SEQ_DOC, eventPageRef } from '../../schema/event-page.js';
import type { NotificationView } from './notifications.events.js';

const NotificationPriorityEnum = builder.enumType(NotificationPriority, {
  name: 'NotificationPriority',
  description: 'LOW < NORMAL < HIGH < URGENT < CRITICAL.',
});

const NotificationRef = builder.objectRef<NotificationView>('Notification').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    type: t.exposeString('type', {
      description: 'What happened, e.g. OFFER_RECEIVED, OFFER_ACCEPTED, MESSAGE, COMPETITION_CLOSED, ANNOUNCEMENT.',
    }),
    title: t.exposeString('title'),
    body: t.exposeString('body', { nullable: true }),
    priority: t.expose('priority', { type: NotificationPriorityEnum }),
    data: t.field({ type: 'JSON', nullable: true, resolve: (n) => n.data ?? null }),
    seq: t.exposeInt('seq', {
      description: "Position in the viewer's notification stream (strictly increasing per user, in creation order).",
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (n) => n.createdAt }),
    readAt: t.field({ type: 'DateTime', nullable: true, resolve: (n) => n.readAt }),
    expiresAt: t.field({ type: 'DateTime', nullable: true, resolve: (n) => n.expiresAt }),
  }),
});

const SendNotificationInput = builder.inputType('SendNotificationInput', {
  description:
    'type 1..100, title 1..200, body ≤ 2000 characters; data ≤ 16 KiB as JSON; ttlSeconds 1..31536000; dedupKey 1..200.',
  fields: (t) => ({
    userId: t.id({ required: true }),
    type: t.string({ required: true }),
    title: t.string({ required: true }),
    body: t.string(),
    priority: t.field({ type: NotificationPriorityEnum, description: 'Default NORMAL.' }),
    data: t.field({ type: 'JSON' }),
    ttlSeconds: t.int({ description: 'Unset: never expires. Expired notifications are neither listed nor delivered.' }),
    dedupKey: t.string({
      description: 'Same dedupKey for the same user within its TTL never makes a second notification.',
    }),
  }),
});

const AnnounceInput = builder.inputType('AnnounceInput', {
  fields: (t) => ({
    title: t.string({ required: true }),
    body: t.string(),
    priority: t.field({ type: NotificationPriorityEnum, description: 'Default NORMAL.' }),
    ttlSeconds: t.int({ description: 'Unset: never expires.' }),
  }),
});

builder.queryField('notifications', (t) =>
  t.field({
    type: [NotificationRef],
    description: "The viewer's notifications, newest first, expired ones excluded. first: 1..100, default 50.",
    authScopes: { authenticated: true },
    args: { unreadOnly: t.arg.boolean(), first: t.arg.int() },
    resolve: (_root, { unreadOnly, first }, ctx) => ctx.services.notifications.list(ctx.viewer!, { unreadOnly, first }),
  }),
);

builder.mutationFields((t) => ({
  markNotificationsRead: t.int({
    description: "Marks the viewer's own unread notifications among ids (at most 1000) read; returns how many changed.",
    authScopes: { authenticated: true },
    guard: { rate: 'notifications' },
    args: { ids: t.arg.idList({ required: true }) },
    resolve: (_root, { ids }, ctx) => ctx.services.notifications.markRead(ctx.viewer!, ids.map(String)),
  }),
  sendNotification: t.field({
    type: NotificationRef,
    description: 'ADMIN. With a dedupKey already used by an unexpired notification of the user, returns that one.',
    authScopes: { admin: true },
    guard: { rate: 'notifications' },
    args: { input: t.arg({ type: SendNotificationInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.notifications.send({ ...input, userId: String(input.userId) }),
  }),
  announce: t.int({
    description: 'ADMIN: to every user; returns how many were notified.',
    authScopes: { admin: true },
    guard: { rate: 'notifications' },
    args: { input: t.arg({ type: AnnounceInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.notifications.announce(input),
  }),
}));

builder.subscriptionField('notificationAdded', (t) =>
  t.field({
    delivery: { kind: 'events', maxQueued: 100 },
    type: NotificationRef,
    description: [
      "The viewer's own notifications. Without afterSeq: first every unread, unexpired one still queued (highest priority first, then oldest first), then live ones.",
      'With afterSeq: every unexpired one with a greater seq, read or not, in seq order, then live ones (RESYNC_REQUIRED when afterSeq is ahead). Over SSE, Last-Event-ID does the same.',
    ].join(' '),
    authScopes: { authenticated: true },
    args: { afterSeq: t.arg.int() },
    subscribe: (_root, { afterSeq }, ctx) => ctx.services.notifications.subscribe(ctx.viewer!, afterSeq),
    resolve: (event) => event.data,
  }),
);

const NotificationEventPageRef = eventPageRef<NotificationView, NotificationView>(
  'NotificationEventPage',
  NotificationRef,
  (event) => event.data,
  "the viewer's notifications (unexpired ones, read or not)",
);

builder.queryField('notificationEvents', (t) =>
  t.field({
    type: NotificationEventPageRef,
    description:
      "Polling fallback of notificationAdded(afterSeq): the viewer's unexpired notifications after afterSeq, read or not, in seq order.",
    authScopes: { authenticated: true },
    args: { afterSeq: t.arg.int({ description: POLL_AFTER_SEQ_DOC }), first: t.arg.int({ description: FIRST_DOC }) },
    guard: { rate: 'polls' },
    resolve: (_root, { afterSeq, first }, ctx) => ctx.services.notifications.events(ctx.viewer!, { afterSeq, first }),
  }),
);
