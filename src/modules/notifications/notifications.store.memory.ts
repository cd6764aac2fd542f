/** In-process audience (no Redis: one instance, the in-process bus): counts subscriptions here. */
import type { NotificationAudience } from './notifications.store.js';

export function createMemoryNotificationAudience(): NotificationAudience {
  const counts = new Map<string, number>();
  return {
    track(userId) {
      counts.set(userId, (counts.get(userId) ?? 0) + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const n = (counts.get(userId) ?? 1) - 1;
        if (n <= 0) counts.delete(userId);
        else counts.set(userId, n);
      };
    },
    async listening(userIds) {
      return new Set(userIds.filter((id) => counts.has(id)));
    },
  };
}
