/**
 * Server-side access state of a user, applied to every verified token, and live watches on it.
 *
 * - Revocation: a token whose `iat` is before User.tokensValidAfter is refused (UNAUTHENTICATED
 *   "token revoked"), and so is every token of a disabled user ("account disabled"). Like an
 *   identity provider's not-before, tokensValidAfter is a whole second: a token issued in that
 *   same second still passes.
 * - Server-side role: once an ADMIN has managed a user (setUserRole, disableUser: tokensValidAfter
 *   is set), the stored User.role replaces the token's role claim. Until then the token's role is
 *   the truth (and is written to User.role on sight).
 * - No database round trip per request: the state is cached per user for `ttlMs`. The instance
 *   holds one subscription to the `user:all` topic (auth.events.ts), which carries every user's
 *   access changes: a change made on any instance drops the cached entry at once; the TTL only
 *   bounds staleness should an event be lost (a Redis reconnect). One topic rather than one per
 *   user because changes are rare (ADMIN actions, leaving a conversation) while the users a vote
 *   rush brings are many: a subscription per cached user cost ~2.8 KB of heap each (28 MB at
 *   10,000 voters, measured) and, with Redis, a SUBSCRIBE on each new voter's first request.
 *   An entry is loaded only while that subscription is live, so no change can slip between the
 *   read and the subscription. While it cannot go live (Redis is away: RELIABILITY.md), one
 *   request waits at most `liveWaitMs` for it, then requests read the user's row for themselves
 *   and the result is not cached: every request reads the database, which is exact, rather than
 *   every request hanging until Redis is back. If the subscription ends (Redis gave up, it fell
 *   behind), every cached state is dropped and the next request subscribes again.
 * - Watches: graphql-ws connections (ws.ts) and SSE streams (streams.ts) end when the user's
 *   tokens are revoked (watchUser).
 */
import type { Role } from '../generated/prisma/enums.js';
import type { AdmissionRow } from '../modules/users/users.service.js';
import { AppError, unauthenticated } from '../errors.js';
import type { EventBus, TopicSubscription } from '../realtime/event-bus.js';
import { USER_ACCESS_ALL, type UserAccessChange, type UserAccessEvent } from '../modules/auth/auth.events.js';
import type { Viewer } from './auth.js';

export interface AccessState {
  disabled: boolean;
  /** Epoch seconds; tokens issued before are refused. null: never revoked. */
  tokensValidAfter: number | null;
  /** The stored role when it overrides the token's (the user is ADMIN-managed); null otherwise. */
  managedRole: Role | null;
}

const OPEN: AccessState = { disabled: false, tokensValidAfter: null, managedRole: null };

export interface UserAccess {
  /** Applies revocation and the server-side role to a verified token's viewer; throws UNAUTHENTICATED. */
  admit(viewer: Viewer): Promise<Viewer>;
  /**
   * Calls `onEnd` once, with the reason, when the viewer's tokens are revoked or the user disabled,
   * on any instance (also when that happened before the watch went live). Returns a stop function.
   */
  watchUser(viewer: Viewer, onEnd: (reason: AppError) => void): () => void;
  /** Drops the cached state (the instance that made a change, before it publishes). */
  invalidate(userId: string): void;
}

interface Entry {
  state?: Promise<AccessState>;
  loadedAt: number;
  /** Bumped by every event: a load that saw another version than it started with is stale. */
  version: number;
}

/** The instance's one subscription to every user's access changes, and the watches fed by it. */
interface Feed {
  subscription: TopicSubscription<UserAccessEvent>;
  /** Its subscription went live: loads need not race its `ready` against a timer. */
  live: boolean;
  /** A load already waited liveWaitMs for it: later ones read uncached without waiting. */
  waited: boolean;
}

const revokedReason = (change: Extract<UserAccessChange, { kind: 'revoked' }>): AppError =>
  change.reason === 'DISABLED' ? unauthenticated('account disabled') : unauthenticated('token revoked: role changed');

export function createUserAccess(deps: {
  bus: EventBus;
  /** How long a cached state is trusted without an event [30 s]. */
  ttlMs?: number;
  /** Users cached at once, least recently used dropped first [10,000]. */
  maxEntries?: number;
  /** How long a load waits for the access subscription to go live before reading uncached [1000 ms]. */
  liveWaitMs?: number;
  onError?: (message: string, details: Record<string, unknown>) => void;
  /**
   * Reads the user's row (users' UserRecords.admissionRow: batched per tick, and a new user is
   * created in the same statement, so ensureUser and the account-age rule need no query of
   * their own).
   */
  readUser: (viewer: Viewer) => Promise<AdmissionRow | undefined>;
}): UserAccess {
  const { bus, readUser, ttlMs = 30_000, maxEntries = 10_000, liveWaitMs = 1_000 } = deps;
  const entries = new Map<string, Entry>();
  /** Revocation watches (graphql-ws connections, SSE streams) by user id. */
  const watches = new Map<string, Set<(change: UserAccessChange) => void>>();
  let feed: Feed | undefined;

  /** A change (or a possibly missed one): the cached state is not trusted, and a load in flight reads again. */
  function drop(entry: Entry | undefined): void {
    if (!entry) return;
    entry.version += 1;
    entry.state = undefined;
  }

  /** The live feed, subscribing (again) when there is none. */
  function feedOf(): Feed {
    if (feed) return feed;
    const current: Feed = (feed = { subscription: bus.subscribe('user', USER_ACCESS_ALL), live: false, waited: false });
    // A subscription that never went live (Redis away past its retries) is dropped: the next
    // request starts over with a new one.
    current.subscription.ready.then(
      () => (current.live = true),
      () => {
        if (feed === current) feed = undefined;
        current.subscription.close();
      },
    );
    void (async () => {
      try {
        for await (const event of current.subscription) {
          const { userId } = event.data;
          drop(entries.get(userId));
          for (const watch of watches.get(userId) ?? []) watch(event.data);
        }
      } catch (error) {
        deps.onError?.('user access subscription failed', { error });
      }
      // Ended (fell behind, or the bus shut down): events may have been missed, so nothing cached
      // is trusted; a later request subscribes again.
      if (feed === current) feed = undefined;
      for (const entry of entries.values()) drop(entry);
    })();
    return current;
  }

  function entryOf(userId: string): Entry {
    const existing = entries.get(userId);
    if (existing) {
      entries.delete(userId); // most recently used last
      entries.set(userId, existing);
      return existing;
    }
    const entry: Entry = { loadedAt: 0, version: 0 };
    entries.set(userId, entry);
    if (entries.size > maxEntries) entries.delete(entries.keys().next().value!);
    return entry;
  }

  /** Whether the feed went live within liveWaitMs (false: it failed or is still pending). */
  async function isLive(current: Feed): Promise<boolean> {
    if (current.live) return true;
    let timer: NodeJS.Timeout | undefined;
    const live = await Promise.race([
      current.subscription.ready.then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), current.waited ? 0 : liveWaitMs))),
    ]).finally(() => clearTimeout(timer));
    if (!live) current.waited = true;
    return live;
  }

  async function load(entry: Entry, viewer: Viewer): Promise<AccessState> {
    const current = feedOf();
    if (!(await isLive(current)) || feed !== current) {
      // Nothing would tell this entry of a change: read for this request only.
      if (entries.get(viewer.id) === entry) entry.state = undefined;
      return read(viewer);
    }
    for (;;) {
      const version = entry.version;
      const state = await read(viewer);
      if (entry.version !== version) continue; // changed while reading: read again
      return state;
    }
  }

  async function read(viewer: Viewer): Promise<AccessState> {
    const user = await readUser(viewer);
    if (!user) return OPEN;
    const tokensValidAfter = user.tokensValidAfter ? Math.floor(user.tokensValidAfter.getTime() / 1000) : null;
    return {
      disabled: user.disabledAt !== null,
      tokensValidAfter,
      managedRole: tokensValidAfter === null ? null : user.role,
    };
  }

  function stateOf(viewer: Viewer): Promise<AccessState> {
    const entry = entryOf(viewer.id);
    const now = Date.now();
    if (entry.state === undefined || now - entry.loadedAt > ttlMs) {
      const state = load(entry, viewer);
      entry.state = state;
      entry.loadedAt = now;
      // A failed read is not cached: the next request tries again.
      state.catch(() => {
        if (entry.state === state) entry.state = undefined;
      });
    }
    return entry.state;
  }

  async function admit(viewer: Viewer): Promise<Viewer> {
    const state = await stateOf(viewer);
    if (state.disabled) throw unauthenticated('account disabled');
    if (state.tokensValidAfter !== null && (viewer.issuedAt ?? Number.NEGATIVE_INFINITY) < state.tokensValidAfter) {
      throw unauthenticated('token revoked');
    }
    return state.managedRole !== null && state.managedRole !== viewer.role
      ? { ...viewer, role: state.managedRole }
      : viewer;
  }

  return {
    admit,
    watchUser(viewer, onEnd) {
      let stopped = false;
      const watch = (change: UserAccessChange): void => {
        if (change.kind === 'revoked') end(revokedReason(change));
      };
      const stop = (): void => {
        stopped = true;
        const set = watches.get(viewer.id);
        set?.delete(watch);
        if (set?.size === 0) watches.delete(viewer.id);
      };
      const end = (reason: AppError): void => {
        if (stopped) return;
        stop();
        onEnd(reason);
      };
      const set = watches.get(viewer.id) ?? new Set();
      watches.set(viewer.id, set.add(watch));
      void (async () => {
        try {
          await feedOf().subscription.ready;
          // A revocation published before the watch was live: the (re-read) state shows it.
          if (!stopped) await admit(viewer);
        } catch (error) {
          if (error instanceof AppError) end(error);
          else if (!stopped) deps.onError?.('user access watch failed', { userId: viewer.id, error });
        }
      })();
      return stop;
    },
    invalidate(userId) {
      drop(entries.get(userId));
    },
  };
}
