/**
 * PresenceStore on Redis, shared by every instance. Every step is one Lua script
 * (presence.lua.ts, where the keys are described), atomic on the server and on the server's
 * clock. The store builds the keys and reads the replies.
 */
import { keySlot, type RedisClient } from '../../infra/redis.js';
import { bindScripts } from '../../infra/redis-scripts.js';
import { ACTIVITY, CLAIM, CLOSE, DUE, HEARTBEAT, OPEN, READ, SET_STATUS, type ReadReply } from './presence.lua.js';
import { offlineView, viewKey, type ManualStatus, type PresenceView } from './presence.rules.js';
import {
  DEFAULT_RECHECK_MS,
  DEFAULT_RETAIN_OFFLINE_MS,
  type PresenceClaimResult,
  type PresenceRecord,
  type PresenceStore,
  type PresenceStoreOptions,
} from './presence.store.js';

/**
 * The sweep schedule is split into this many partitions, each with its own hash tag `{p<n>}`
 * that a user's keys share (the user's partition is fixed by its id), so each script stays in
 * one slot on Redis Cluster and the partitions spread over the masters. Changing the number moves
 * users to other keys: only with every instance stopped.
 */
export const PRESENCE_PARTITIONS = 16;
const partitionOf = (userId: string): number => keySlot(userId) % PRESENCE_PARTITIONS;
const dueKey = (partition: number): string => `presence:{p${partition}}:due`;
export const presenceKeys = (userId: string): [string, string, string] => {
  const partition = partitionOf(userId);
  return [`presence:{p${partition}}:${userId}:c`, `presence:{p${partition}}:${userId}:s`, dueKey(partition)];
};

const MANUAL = new Set<string>(['AWAY', 'DND']);

export function createRedisPresenceStore(options: PresenceStoreOptions & { redis: RedisClient }): PresenceStore {
  const {
    redis,
    offlineGraceMs,
    recheckMs = DEFAULT_RECHECK_MS,
    retainOfflineMs = DEFAULT_RETAIN_OFFLINE_MS,
  } = options;
  const scripts = bindScripts(redis, { OPEN, CLOSE, HEARTBEAT, ACTIVITY, SET_STATUS, READ, CLAIM, DUE });

  const int = (value: ReadReply[number] | undefined): number | null =>
    value === null || value === undefined ? null : Number(value);

  function record(userId: string, reply: ReadReply): PresenceRecord {
    const [now, connections, version, ended, act, man, msg, dl, pv, seq] = reply;
    return {
      userId,
      now: Number(now),
      connections: Number(connections),
      version: int(version) ?? 0,
      endedAt: int(ended),
      lastActivityAt: int(act),
      manual: typeof man === 'string' && MANUAL.has(man) ? (man as ManualStatus) : null,
      statusMessage: typeof msg === 'string' ? msg : null,
      deadline: int(dl),
      published: typeof pv === 'string' ? (JSON.parse(pv) as PresenceView) : offlineView(userId),
      seq: int(seq) ?? 0,
    };
  }

  return {
    async open(userId, connectionId, ttlMs) {
      const opened = await scripts.OPEN(presenceKeys(userId), [userId, connectionId, ttlMs, offlineGraceMs, recheckMs]);
      return opened === 1 ? 'opened' : 'announce-offline-first';
    },
    async close(userId, connectionId) {
      return (await scripts.CLOSE(presenceKeys(userId), [userId, connectionId, recheckMs])) === 1;
    },
    async heartbeat(entries, ttlMs) {
      const byUser = new Map<string, string[]>();
      for (const { userId, connectionId } of entries) {
        const ids = byUser.get(userId);
        if (ids) ids.push(connectionId);
        else byUser.set(userId, [connectionId]);
      }
      const replies = await scripts.HEARTBEAT.many(
        [...byUser].map(([userId, ids]) => ({ keys: presenceKeys(userId), args: [userId, ttlMs, ...ids] })),
      );
      return replies.flat();
    },
    async activity(userId) {
      return (await scripts.ACTIVITY(presenceKeys(userId), [userId, recheckMs])) === 1;
    },
    async setStatus(userId, change) {
      const keep = change.statusMessage === undefined ? '1' : '0';
      const set = await scripts.SET_STATUS(presenceKeys(userId), [
        userId,
        offlineGraceMs,
        recheckMs,
        change.manual ?? '',
        keep,
        change.statusMessage ?? '',
      ]);
      return set === 1;
    },
    async read(userIds) {
      const replies = await scripts.READ.many(
        userIds.map((userId) => ({ keys: presenceKeys(userId), args: [userId] })),
      );
      return replies.map((reply, i) => record(userIds[i]!, reply));
    },
    async claim(claims) {
      const replies = await scripts.CLAIM.many(
        claims.map((c) => ({
          keys: presenceKeys(c.userId),
          args: [
            c.userId,
            c.version,
            c.derivedAt,
            c.view === null ? '' : viewKey(c.view),
            c.view?.status ?? '',
            c.deadline ?? '',
            retainOfflineMs,
          ],
        })),
      );
      return replies.map((reply, i): PresenceClaimResult => {
        const [outcome, pv, seq] = reply;
        const userId = claims[i]!.userId;
        return {
          outcome,
          published: typeof pv === 'string' ? (JSON.parse(pv) as PresenceView) : offlineView(userId),
          seq: Number(seq),
        };
      });
    },
    async due(limit, leaseMs) {
      // Each partition's share of the limit, rounded up: a sweep takes at most about `limit`.
      const share = Math.max(1, Math.ceil(limit / PRESENCE_PARTITIONS));
      const replies = await scripts.DUE.many(
        Array.from({ length: PRESENCE_PARTITIONS }, (_, partition) => ({
          keys: [dueKey(partition)],
          args: [share, leaseMs],
        })),
      );
      return replies.flat();
    },
  };
}
