/**
 * Presence and follows, as the API sees them. Presence itself comes from the tracker (this
 * instance's connections and the shared store); this service validates input, fills in the
 * persisted lastSeenAt of users the store no longer remembers, and keeps the follow graph.
 *
 * Decisions:
 * - `presence`/`presenceChanged` are public, like the online dot of a chat app: a Presence holds
 *   nothing but what the user chose to show (status, message) and a connection count.
 * - setPresence(OFFLINE) is BAD_USER_INPUT: presence is derived from connections, and an
 *   "appear offline" mode would still leak through `connections`. AWAY and DND are held (by hand)
 *   while connected; ONLINE clears them. An omitted statusMessage keeps the current one; null or
 *   blank clears it. With no live connection (and past the grace) there is nothing to hold a
 *   status: CONFLICT (reason NOT_CONNECTED).
 * - Follows are one-way and idempotent; `onlineFollowing` and `followingPresenceChanged` cover the
 *   newest MAX_FOLLOWING_WATCHED people followed.
 */
import type { PrismaClient, User } from '../../generated/prisma/client.js';
import { notFound } from '../../errors.js';
import type { EventBus } from '../../realtime/event-bus.js';
import {
  cannotFollowSelf,
  notConnected,
  offlineNotSettable,
  statusMessageTooLong,
  userIdCount,
} from './presence.errors.js';
import { presenceStream, publishPresence } from './presence.events.js';
import type { PresenceRules, PresenceStatus, PresenceView } from './presence.rules.js';
import type { PresenceStore } from './presence.store.js';
import { createPresenceTracker, type AnnouncedPresence, type PresenceTracker } from './presence.tracker.js';

export const MAX_PRESENCE_IDS = 100;
export const MAX_STATUS_MESSAGE = 200;
export const MAX_FOLLOWING_WATCHED = 1_000;
const DEFAULT_LIST = 100;

export interface PresenceService {
  /** This instance's connections (the transports open and close them). */
  readonly tracker: PresenceTracker;
  presence(userIds: readonly string[]): Promise<PresenceView[]>;
  setPresence(
    viewerId: string,
    status: PresenceStatus,
    statusMessage: string | null | undefined,
  ): Promise<PresenceView>;
  /** Snapshot of every user first, then each change. */
  changes(userIds: readonly string[]): AsyncIterableIterator<PresenceView>;
  follow(viewerId: string, userId: string): Promise<User>;
  unfollow(viewerId: string, userId: string): Promise<User>;
  following(viewerId: string, first?: number | null): Promise<User[]>;
  followers(viewerId: string, first?: number | null): Promise<User[]>;
  /** The people the viewer follows who are not OFFLINE (AWAY and DND included). */
  onlineFollowing(viewerId: string): Promise<PresenceView[]>;
  /** changes() over the people the viewer follows when the subscription starts. */
  followingChanges(viewerId: string): Promise<AsyncIterableIterator<PresenceView>>;
  close(): Promise<void>;
}

function normaliseIds(userIds: readonly string[]): string[] {
  if (userIds.length < 1 || userIds.length > MAX_PRESENCE_IDS) throw userIdCount(MAX_PRESENCE_IDS);
  return userIds.map(String);
}

function normaliseMessage(statusMessage: string | null | undefined): string | null | undefined {
  if (statusMessage === undefined || statusMessage === null) return statusMessage;
  const trimmed = statusMessage.trim();
  if (trimmed.length > MAX_STATUS_MESSAGE) throw statusMessageTooLong(MAX_STATUS_MESSAGE);
  return trimmed === '' ? null : trimmed;
}

const listSize = (first: number | null | undefined): number =>
  Math.max(0, Math.min(first ?? DEFAULT_LIST, MAX_FOLLOWING_WATCHED));

export function createPresenceService(deps: {
  prisma: PrismaClient;
  bus: EventBus;
  store: PresenceStore;
  instanceId: string;
  rules: PresenceRules;
  connectionTtlMs: number;
  onError: (message: string, details: Record<string, unknown>) => void;
  /** Tests: no timers, or other intervals. */
  tracker?: { timers?: boolean; heartbeatMs?: number; sweepMs?: number };
}): PresenceService {
  const { prisma, bus } = deps;
  const tracker = createPresenceTracker({
    store: deps.store,
    instanceId: deps.instanceId,
    rules: deps.rules,
    connectionTtlMs: deps.connectionTtlMs,
    ...deps.tracker,
    announce: (userId, seq, view) => publishPresence(bus, userId, seq, view),
    onOffline: async (userId, lastSeenAt) => {
      await prisma.user.updateMany({
        where: { id: userId, OR: [{ lastSeenAt: null }, { lastSeenAt: { lt: lastSeenAt } }] },
        data: { lastSeenAt },
      });
    },
    onError: deps.onError,
  });

  /** OFFLINE users the store has forgotten (or never saw): lastSeenAt from the database. */
  async function withLastSeen(announced: AnnouncedPresence[]): Promise<AnnouncedPresence[]> {
    const missing = [
      ...new Set(
        announced.filter((a) => a.view.status === 'OFFLINE' && a.view.lastSeenAt === null).map((a) => a.view.userId),
      ),
    ];
    if (missing.length === 0) return announced;
    const rows = await prisma.user.findMany({
      where: { id: { in: missing }, lastSeenAt: { not: null } },
      select: { id: true, lastSeenAt: true },
    });
    const seen = new Map(rows.map((r) => [r.id, r.lastSeenAt!.toISOString()]));
    return announced.map((a) =>
      a.view.status === 'OFFLINE' && a.view.lastSeenAt === null && seen.has(a.view.userId)
        ? { ...a, view: { ...a.view, lastSeenAt: seen.get(a.view.userId)! } }
        : a,
    );
  }

  const read = async (userIds: readonly string[]): Promise<AnnouncedPresence[]> =>
    withLastSeen(await tracker.read(userIds));

  async function followeeIds(viewerId: string): Promise<string[]> {
    const rows = await prisma.follow.findMany({
      where: { followerId: viewerId },
      orderBy: { createdAt: 'desc' },
      take: MAX_FOLLOWING_WATCHED,
      select: { followeeId: true },
    });
    return rows.map((r) => r.followeeId);
  }

  async function existingUser(userId: string): Promise<User> {
    const user = await prisma.user.findUnique({ where: { id: userId } });
    if (!user) throw notFound('User', userId);
    return user;
  }

  return {
    tracker,
    async presence(userIds) {
      return (await read(normaliseIds(userIds))).map((a) => a.view);
    },
    async setPresence(viewerId, status, statusMessage) {
      if (status === 'OFFLINE') throw offlineNotSettable();
      const message = normaliseMessage(statusMessage);
      const result = await tracker.setStatus(viewerId, status === 'ONLINE' ? null : status, message);
      if (result === 'offline') throw notConnected();
      return result.view;
    },
    changes(userIds) {
      return presenceStream(bus, normaliseIds(userIds), read);
    },
    async follow(viewerId, userId) {
      if (userId === viewerId) throw cannotFollowSelf();
      const user = await existingUser(userId);
      await prisma.follow.createMany({ data: [{ followerId: viewerId, followeeId: userId }], skipDuplicates: true });
      return user;
    },
    async unfollow(viewerId, userId) {
      const user = await existingUser(userId);
      await prisma.follow.deleteMany({ where: { followerId: viewerId, followeeId: userId } });
      return user;
    },
    async following(viewerId, first) {
      const rows = await prisma.follow.findMany({
        where: { followerId: viewerId },
        orderBy: [{ createdAt: 'desc' }, { followeeId: 'asc' }],
        take: listSize(first),
        include: { followee: true },
      });
      return rows.map((r) => r.followee);
    },
    async followers(viewerId, first) {
      const rows = await prisma.follow.findMany({
        where: { followeeId: viewerId },
        orderBy: [{ createdAt: 'desc' }, { followerId: 'asc' }],
        take: listSize(first),
        include: { follower: true },
      });
      return rows.map((r) => r.follower);
    },
    async onlineFollowing(viewerId) {
      const ids = await followeeIds(viewerId);
      if (ids.length === 0) return [];
      return (await tracker.read(ids)).map((a) => a.view).filter((view) => view.status !== 'OFFLINE');
    },
    async followingChanges(viewerId) {
      const ids = await followeeIds(viewerId);
      return presenceStream(bus, ids, read);
    },
    close: () => tracker.close(),
  };
}
