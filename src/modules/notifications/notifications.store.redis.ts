/**
 * Redis audience: the pubsub channels themselves are the registry. Every instance with a live
 * `notificationAdded` subscriber of a user is SUBSCRIBEd to `notifications:<userId>` (the bus's
 * channel name), so `PUBSUB NUMSUB` answers "is anybody listening" for a batch of users in one
 * command, with nothing to keep in sync or expire. On a Redis Cluster the channels are sharded
 * (SSUBSCRIBE), and `PUBSUB SHARDNUMSUB` is asked of each channel's shard, which is where every
 * subscriber of that channel is connected.
 */
import type { RedisPubSub } from '../../infra/redis.js';
import { notificationsTopic } from './notifications.events.js';
import type { NotificationAudience } from './notifications.store.js';

const NUMSUB_BATCH = 1_000;

export function createRedisNotificationAudience(deps: { pubsub: RedisPubSub }): NotificationAudience {
  const { pubsub } = deps;
  return {
    track: () => () => undefined,
    async listening(userIds) {
      const found = new Set<string>();
      for (let i = 0; i < userIds.length; i += NUMSUB_BATCH) {
        const batch = userIds.slice(i, i + NUMSUB_BATCH);
        const counts = await pubsub.subscribers(batch.map(notificationsTopic));
        for (const [j, count] of counts.entries()) if (count > 0) found.add(batch[j]!);
      }
      return found;
    },
  };
}
