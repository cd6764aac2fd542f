/**
 * When was this account created? `User.createdAt` never changes, so a process-wide cache holds it
 * (bounded, least recently used first out). Misses that arrive in the same tick share one query:
 * a crowd of new voters costs one `WHERE id IN (...)` per tick, not one query each.
 */
import type { PrismaClient } from '../../generated/prisma/client.js';
import type { UserRecords } from '../../modules/users/users.service.js';

export type LoadCreatedAt = (userIds: readonly string[]) => Promise<Map<string, number>>;

export interface AccountAge {
  /** Epoch ms of the account's creation; null when the user is unknown. */
  createdAt(userId: string): Promise<number | null>;
}

export function createAccountAge(deps: { load: LoadCreatedAt; cacheSize?: number }): AccountAge {
  const cacheSize = deps.cacheSize ?? 100_000;
  const cache = new Map<string, number>();
  let batch: Map<string, { resolve: (v: number | null) => void; reject: (e: unknown) => void }[]> | undefined;

  function remember(userId: string, createdAt: number): void {
    cache.delete(userId);
    cache.set(userId, createdAt);
    if (cache.size > cacheSize) cache.delete(cache.keys().next().value!);
  }

  async function flush(current: NonNullable<typeof batch>): Promise<void> {
    try {
      const found = await deps.load([...current.keys()]);
      for (const [userId, waiters] of current) {
        const createdAt = found.get(userId) ?? null;
        // Unknown users are not cached: they may be written a moment later.
        if (createdAt !== null) remember(userId, createdAt);
        for (const w of waiters) w.resolve(createdAt);
      }
    } catch (error) {
      for (const waiters of current.values()) for (const w of waiters) w.reject(error);
    }
  }

  return {
    createdAt(userId) {
      const hit = cache.get(userId);
      if (hit !== undefined) {
        remember(userId, hit);
        return Promise.resolve(hit);
      }
      if (!batch) {
        batch = new Map();
        const current = batch;
        setImmediate(() => {
          batch = undefined;
          void flush(current);
        });
      }
      const current = batch;
      return new Promise((resolve, reject) => {
        const waiters = current.get(userId) ?? [];
        waiters.push({ resolve, reject });
        current.set(userId, waiters);
      });
    },
  };
}

/**
 * The loader on the User table. Admission has just read (or created) the row of nearly every
 * caller in the same request (users' UserRecords), so its createdAt is usually at hand; only the
 * rest is queried.
 */
export const createdAtFromUsers =
  (prisma: PrismaClient, records: Pick<UserRecords, 'recentCreatedAt'>): LoadCreatedAt =>
  async (userIds) => {
    const found = new Map<string, number>();
    const misses: string[] = [];
    for (const id of userIds) {
      const createdAt = records.recentCreatedAt(id);
      if (createdAt === undefined) misses.push(id);
      else found.set(id, createdAt);
    }
    if (misses.length > 0) {
      const rows = await prisma.user.findMany({ where: { id: { in: misses } }, select: { id: true, createdAt: true } });
      for (const row of rows) found.set(row.id, row.createdAt.getTime());
    }
    return found;
  };
