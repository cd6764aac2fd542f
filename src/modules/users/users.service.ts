import type { PrismaClient, User } from '../../generated/prisma/client.js';
import type { Role } from '../../generated/prisma/enums.js';
import type { Viewer } from '../../guards/auth.js';

/** Known (id → "name|role") pairs, so steady traffic does not upsert on every request. */
const SEEN_CACHE_LIMIT = 50_000;
/** Users first seen in the same moment are written with one statement. */
const MAX_BATCH = 500;
/** createdAt of users just read, for the fraud check later in the same request (guards/fraud/account-age.ts). */
const RECENT_CREATED_AT_LIMIT = 10_000;

/** A user as other modules show it (an offer's judge, a message's author): what User exposes. */
export interface UserView {
  id: string;
  name: string;
  role: Role;
}

/** The view of a user row; a user that no longer exists shows as its id. */
export const userView = (user: { id: string; name: string; role: Role } | null | undefined, id: string): UserView =>
  user ? { id: user.id, name: user.name, role: user.role } : { id, name: id, role: 'AUDIENCE' };

export interface UsersService {
  /**
   * Creates the user on first sight of its sub, and follows name/role changes in the token; an
   * ADMIN-managed user's role (tokensValidAfter set, see guards/access.ts) is never overwritten.
   */
  ensureUser(viewer: Viewer): Promise<void>;
  byId(id: string): Promise<User | null>;
}

/** What admission (guards/access.ts) and the account-age fraud rule need of a User row. */
export interface AdmissionRow {
  id: string;
  role: Role;
  tokensValidAfter: Date | null;
  disabledAt: Date | null;
  createdAt: Date;
}

/**
 * The User rows of the request path, shared by users, admission and the account-age rule so that a
 * first-time user costs one statement, not three: a crowd of new voters at a live event would
 * otherwise read and write the same rows in three separately batched round trips.
 */
export interface UserRecords {
  /** ensureUser's upsert (batched, skipped for a known name/role). */
  ensure(viewer: Viewer): Promise<void>;
  /**
   * The user's row for admission, read with every other call of the same tick in one statement.
   * A user seen for the first time is created from the token in that statement, as ensureUser
   * would right after admission (a new user has nothing to refuse); an existing row is never
   * changed here, so a refused token renames nobody. undefined: no such user (not expected).
   */
  admissionRow(viewer: Viewer): Promise<AdmissionRow | undefined>;
  /** Epoch ms of a recently read user's creation, without a query; undefined when not at hand. */
  recentCreatedAt(userId: string): number | undefined;
}

/** `records`: the one UserRecords of the app (app.ts), shared with admission and the account-age rule. */
export function createUsersService(deps: { prisma: PrismaClient; records: UserRecords }): UsersService {
  const { prisma, records } = deps;
  return {
    ensureUser: (viewer) => records.ensure(viewer),
    byId(id) {
      return prisma.user.findUnique({ where: { id } });
    },
  };
}

interface Pending {
  viewer: Viewer;
  fingerprint: string;
  done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Waiter {
  resolve: (row: AdmissionRow | undefined) => void;
  reject: (error: unknown) => void;
}

type Row = AdmissionRow & { name: string };

const fingerprintOf = (name: string, role: string): string => `${name}|${role}`;

export function createUserRecords(prisma: PrismaClient): UserRecords {
  const seen = new Map<string, string>();
  const queued = new Map<string, Pending>();
  let flushing = false;
  const createdAt = new Map<string, number>();

  function markSeen(userId: string, fingerprint: string): void {
    if (seen.size >= SEEN_CACHE_LIMIT && !seen.has(userId)) seen.delete(seen.keys().next().value!);
    seen.set(userId, fingerprint);
  }

  function remember(row: Row): void {
    // The stored name and role: an upsert with this fingerprint would change nothing.
    markSeen(row.id, fingerprintOf(row.name, row.role));
    createdAt.delete(row.id);
    createdAt.set(row.id, row.createdAt.getTime());
    if (createdAt.size > RECENT_CREATED_AT_LIMIT) createdAt.delete(createdAt.keys().next().value!);
  }

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
        markSeen(pending.viewer.id, pending.fingerprint);
        pending.resolve();
      }
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      flushing = false;
      if (queued.size > 0) setImmediate(() => void flush());
    }
  }

  let admissions = new Map<string, { viewer: Viewer; waiters: Waiter[] }>();
  let admitting = false;

  // One statement in flight at a time: callers arriving meanwhile form the next one, so under
  // load each statement carries more users instead of more statements running side by side.
  async function flushAdmissions(): Promise<void> {
    if (admitting || admissions.size === 0) return;
    admitting = true;
    const batch = admissions;
    admissions = new Map();
    try {
      const viewers = [...batch.values()].map((b) => b.viewer);
      const ids = viewers.map((v) => v.id);
      const now = new Date();
      // Rows the INSERT creates are not visible to the SELECT (one snapshot), so none comes twice.
      const rows = await prisma.$queryRaw<Row[]>`
        WITH created AS (
          INSERT INTO "User" ("id", "name", "role", "createdAt", "updatedAt")
          SELECT u.id, u.name, u.role::"Role", ${now}, ${now}
          FROM unnest(${ids}::text[], ${viewers.map((v) => v.name)}::text[], ${viewers.map((v) => v.role)}::text[]) AS u(id, name, role)
          ON CONFLICT ("id") DO NOTHING
          RETURNING "id", "name", "role", "tokensValidAfter", "disabledAt", "createdAt")
        SELECT "id", "name", "role"::text AS "role", "tokensValidAfter", "disabledAt", "createdAt" FROM created
        UNION ALL
        SELECT "id", "name", "role"::text, "tokensValidAfter", "disabledAt", "createdAt" FROM "User" WHERE "id" = ANY(${ids}::text[])`;
      const byId = new Map(rows.map((row) => [row.id, row]));
      // Created by a concurrent transaction after this statement's snapshot: read once more.
      const missing = ids.filter((id) => !byId.has(id));
      if (missing.length > 0) {
        const late = await prisma.$queryRaw<Row[]>`
          SELECT "id", "name", "role"::text AS "role", "tokensValidAfter", "disabledAt", "createdAt" FROM "User" WHERE "id" = ANY(${missing}::text[])`;
        for (const row of late) byId.set(row.id, row);
      }
      for (const [id, { waiters }] of batch) {
        const row = byId.get(id);
        if (row) remember(row);
        for (const w of waiters) w.resolve(row);
      }
    } catch (error) {
      for (const { waiters } of batch.values()) for (const w of waiters) w.reject(error);
    } finally {
      admitting = false;
      if (admissions.size > 0) setImmediate(() => void flushAdmissions());
    }
  }

  return {
    ensure(viewer) {
      const fingerprint = fingerprintOf(viewer.name, viewer.role);
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
    admissionRow(viewer) {
      return new Promise((resolve, reject) => {
        if (admissions.size === 0) setImmediate(() => void flushAdmissions());
        const entry = admissions.get(viewer.id);
        // Two tokens of one new user in one tick: the first creates the row, the other's name
        // or role follows through ensure().
        if (entry) entry.waiters.push({ resolve, reject });
        else admissions.set(viewer.id, { viewer, waiters: [{ resolve, reject }] });
      });
    },
    recentCreatedAt: (userId) => createdAt.get(userId),
  };
}
