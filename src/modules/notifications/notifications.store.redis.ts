/**
 * Redis audience: the pubsub channels themselves are the registry. Every instance with a live
 * `notificationAdded` subscriber of a user is SUBSCRIBEd to `notifications:<userId>` (the bus's
 * channel name), so `PUBSUB NUMSUB` answers "is anybody listening" for a batch of users in one
 * command, with nothing to keep in sync or expire. (Redis Cluster: NUMSUB counts one node's
 * subscribers; with sharded clusters use a counter instead.)
 */
import type { Redis } from 'ioredis';
import { notificationsTopic } from './notifications.events.js';
import type { NotificationAudience } from './notifications.store.js';

const NUMSUB_BATCH = 1_000;

export function createRedisNotificationAudience(deps: { redis: Redis }): NotificationAudience {
  const { redis } = deps;
  return {
    track: () => () => undefined,
    async listening(userIds) {
      const found = new Set<string>();
      for (let i = 0; i < userIds.length; i += NUMSUB_BATCH) {
        const batch = userIds.slice(i, i + NUMSUB_BATCH);
        const reply = (await redis.call('PUBSUB', 'NUMSUB', ...batch.map(notificationsTopic))) as (string | number)[];
        for (let j = 0; j < batch.length; j += 1) {
          if (Number(reply[2 * j + 1]) > 0) found.add(batch[j]!);
        }
      }
      return found;
    },
  };
}
