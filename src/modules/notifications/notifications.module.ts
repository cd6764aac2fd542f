import type { Module, ModuleContext } from '../module.js';
import { createNotificationsService, type NotificationsService } from './notifications.service.js';
import { createNotificationTriggers } from './notifications.triggers.js';

/**
 * Notifications, and the triggers that raise them from other modules' commits (offers,
 * competitions, messages to users with no live connection: `connections` from presence).
 */
export function createNotificationsModule(
  ctx: ModuleContext,
  deps: { connections: (userIds: readonly string[]) => Promise<ReadonlyMap<string, number>> },
): Module<NotificationsService> {
  const { prisma, bus, events } = ctx;
  const notifications = createNotificationsService({
    prisma,
    bus,
    audience: ctx.stores.notificationAudience,
    now: () => new Date(ctx.now()),
  });
  const triggers = createNotificationTriggers({
    prisma,
    notifications,
    events,
    connections: deps.connections,
  });
  return { service: notifications, close: () => triggers.settle() };
}
