/**
 * What the notifications module publishes: on topic `notifications:<userId>`, one event per new
 * notification of that user, its seq taken with nextSeq in the insert's transaction (stored in
 * Notification.seq). An event stream (never conflated); subscribers get the backlog first, then
 * events newer than the backlog (see notifications.service.ts, subscribe()).
 *
 * Payloads cross Redis as JSON: plain objects, times as ISO strings.
 */
import type { Notification } from '../../generated/prisma/client.js';
import type { NotificationPriority } from '../../generated/prisma/enums.js';
import type { EventBus } from '../../realtime/event-bus.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';

/** A notification as the API shows it, the same shape in query results and in events. */
export interface NotificationView {
  id: string;
  userId: string;
  type: string;
  title: string;
  body: string | null;
  priority: NotificationPriority;
  data: unknown;
  /** Per-user creation order. */
  seq: number;
  createdAt: string;
  readAt: string | null;
  expiresAt: string | null;
}

export type NotificationEvent = RealtimeEvent<NotificationView>;

export const notificationsTopic = (userId: string): string => topicName('notifications', userId);

const iso = (date: Date | null): string | null => (date === null ? null : date.toISOString());

export function toView(row: Notification): NotificationView {
  return {
    id: row.id,
    userId: row.userId,
    type: row.type,
    title: row.title,
    body: row.body,
    priority: row.priority,
    data: row.data ?? null,
    seq: row.seq,
    createdAt: row.createdAt.toISOString(),
    readAt: iso(row.readAt),
    expiresAt: iso(row.expiresAt),
  };
}

export function toEvent(view: NotificationView): NotificationEvent {
  return { topic: notificationsTopic(view.userId), seq: view.seq, publishedAt: new Date().toISOString(), data: view };
}

/** After the commit. */
export function publishNotification(bus: EventBus, view: NotificationView): void {
  bus.publish('notifications', view.userId, toEvent(view));
}

declare module '../../realtime/topics.js' {
  interface TopicMap {
    /** A user's new notifications. */
    notifications: NotificationView;
  }
}
