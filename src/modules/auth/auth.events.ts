/**
 * What the access topic (`user:all`) carries: one user's access change per event, `data.userId`
 * saying whose. Every instance holds one subscription to it (guards/access.ts: the admission
 * cache, graphql-ws connections, SSE streams), so a change made on one instance takes effect on
 * all of them. One topic for every user, not one per user: changes are rare and the users an
 * instance serves are many (access.ts says what a topic per user cost). An event keeps the
 * user's own `topic` (`user:<userId>`) and `seq`, taken in the change's transaction, so two
 * changes to one user never wait on each other's sequence row nor on other users'.
 *
 * - `revoked`: the user's tokens issued before now are dead (role changed, disabled). Their
 *   graphql-ws connections close with 4403 and their SSE streams end with a final
 *   UNAUTHENTICATED error, whatever they watch: nothing authorised under the old role survives.
 * - `accessLost`: the user lost access to one resource (`conversation:<id>`, published by
 *   messaging after the commit that removed them). The connection stays; the streams on that
 *   resource end through the resource module's own topic (messaging's `conversationAccess`).
 * - `updated`: another change to admission (enableUser): caches drop the user's entry.
 *
 * Build an event with `userAccessEvent(tx, userId, change)` in the transaction that made the
 * change, and `bus.publish('user', USER_ACCESS_ALL, event)` after the commit.
 */
import type { Role } from '../../generated/prisma/enums.js';
import { nextSeq } from '../../realtime/sequence.js';
import { topicName, type RealtimeEvent } from '../../realtime/topics.js';

export type UserAccessChange =
  | { kind: 'revoked'; reason: 'ROLE_CHANGED' | 'DISABLED'; role: Role }
  | { kind: 'accessLost'; resource: string }
  | { kind: 'updated' };

/** The entity of the one access topic every instance subscribes to. */
export const USER_ACCESS_ALL = 'all';

export type UserAccessNotice = UserAccessChange & { userId: string };

export type UserAccessEvent = RealtimeEvent<UserAccessNotice>;

type Tx = Parameters<typeof nextSeq>[0];

/** Builds the event inside the transaction that made the change (its seq is taken there); publish it after the commit. */
export async function userAccessEvent(tx: Tx, userId: string, change: UserAccessChange): Promise<UserAccessEvent> {
  const topic = topicName('user', userId);
  return { topic, seq: await nextSeq(tx, topic), publishedAt: new Date().toISOString(), data: { ...change, userId } };
}

declare module '../../realtime/topics.js' {
  interface TopicMap {
    /**
     * Every user's access changes (tokens revoked on a role change or disable), on the one topic
     * `user:all`: rare, and needed wherever the user is served (see above why not per user).
     */
    user: UserAccessNotice;
  }
}
