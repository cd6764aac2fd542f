import type { PrismaClient, User } from '../../generated/prisma/client.js';
import type { Viewer } from '../../guards/auth.js';

/** Known (id → "name|role") pairs, so steady traffic does not upsert on every request. */
const SEEN_CACHE_LIMIT = 50_000;
/** Users first seen in the same moment are written with one statement. */
const MAX_BATCH = 500;

export interface UsersService {
  /**
   * Creates the user on first sight of its sub, and follows name/role changes in the token; an
   * ADMIN-managed user's role (tokensValidAfter set, see guards/access.ts) is never overwritten.
   */
  ensureUser(viewer: Viewer): Promise<void>;
  byId(id: string): Promise<User | null>;
}

interface Pending {
  viewer: Viewer;
  fingerprint: string;
  done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export function createUsersService(deps: { prisma: PrismaClient }): UsersService {
  const { prisma } = deps;
  const seen = new Map<string, string>();
  const queued = new Map<string, Pending>();
  let flushing = false;

  // A crowd of new voters arrives at once at a live event: one multi-row upsert per batch
  // instead of one round trip per person.
  async function flush(): Promise<void> {
    if (flushing || queued.size === 0) return;
    flushing = true;
    const batch = [...queued.values()].slice(0, MAX_BATCH);
    for (const pending of batch) queued.delete(`${pending.viewer.id}|${pending.fingerprint}`);
    try {
      const ids = batch.map((p) => p.viewer.id);
      const names = batch.map((p) => p.viewer.name);
      const roles = batch.map((p) => p.viewer.role);
      const now = new Date();
      await prisma.$executeRaw`
        INSERT INTO "User" ("id", "name", "role", "createdAt", "updatedAt")
        SELECT u.id, u.name, u.role::"Role", ${now}, ${now}
        FROM unnest(${ids}::text[], ${names}::text[], ${roles}::text[]) AS u(id, name, role)
        ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name",
          "role" = CASE WHEN "User"."tokensValidAfter" IS NULL THEN EXCLUDED."role" ELSE "User"."role" END,
          "updatedAt" = EXCLUDED."updatedAt"
        WHERE "User"."name" IS DISTINCT FROM EXCLUDED."name"
          OR ("User"."role" IS DISTINCT FROM EXCLUDED."role" AND "User"."tokensValidAfter" IS NULL)`;
      for (const pending of batch) {
        if (seen.size >= SEEN_CACHE_LIMIT) seen.delete(seen.keys().next().value as string);
        seen.set(pending.viewer.id, pending.fingerprint);
        pending.resolve();
      }
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      flushing = false;
      if (queued.size > 0) setImmediate(() => void flush());
    }
  }

  return {
    ensureUser(viewer) {
      const fingerprint = `${viewer.name}|${viewer.role}`;
      if (seen.get(viewer.id) === fingerprint) return Promise.resolve();
      const key = `${viewer.id}|${fingerprint}`;
      let pending = queued.get(key);
      if (!pending) {
        let resolve!: () => void;
        let reject!: (error: unknown) => void;
        const done = new Promise<void>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        pending = { viewer, fingerprint, done, resolve, reject };
        // Two tokens for one sub with different names in one batch: the later one wins next time.
        if ([...queued.values()].some((p) => p.viewer.id === viewer.id)) setImmediate(() => queued.set(key, pending!));
        else queued.set(key, pending);
        setImmediate(() => void flush());
      }
      return pending.done;
    },
    byId(id) {
      return prisma.user.findUnique({ where: { id } });
    },
  };
}
