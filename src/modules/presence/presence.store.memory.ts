/**
 * PresenceStore in this process (the embedded default, one instance). The same facts and steps as
 * the Redis store, so the same tracker runs on it; JavaScript's single thread makes every step
 * atomic. `now` is injectable for tests.
 */
import { nextPresenceSeq, offlineView, viewKey, type ManualStatus, type PresenceView } from './presence.rules.js';
import {
  DEFAULT_RECHECK_MS,
  DEFAULT_RETAIN_OFFLINE_MS,
  type PresenceClaimResult,
  type PresenceRecord,
  type PresenceStore,
  type PresenceStoreOptions,
} from './presence.store.js';

interface UserState {
  entries: Map<string, number>;
  version: number;
  endedAt: number | null;
  lastActivityAt: number | null;
  manual: ManualStatus | null;
  statusMessage: string | null;
  deadline: number | null;
  published: PresenceView;
  publishedKey: string;
  seq: number;
  derivedAt: number;
  /** Set when OFFLINE was announced: the record is forgotten at this instant. */
  forgetAt: number | null;
}

export function createMemoryPresenceStore(options: PresenceStoreOptions & { now?: () => number }): PresenceStore {
  const {
    offlineGraceMs,
    recheckMs = DEFAULT_RECHECK_MS,
    retainOfflineMs = DEFAULT_RETAIN_OFFLINE_MS,
    now = Date.now,
  } = options;
  const users = new Map<string, UserState>();
  const dueAt = new Map<string, number>();
  let forgottenAt = 0;

  function stateOf(userId: string): UserState {
    let state = users.get(userId);
    if (state === undefined || (state.forgetAt !== null && now() >= state.forgetAt)) {
      const published = offlineView(userId);
      state = {
        entries: new Map(),
        version: state?.version ?? 0,
        endedAt: null,
        lastActivityAt: null,
        manual: null,
        statusMessage: null,
        deadline: null,
        published,
        publishedKey: viewKey(published),
        seq: 0,
        derivedAt: 0,
        forgetAt: null,
      };
      users.set(userId, state);
    }
    return state;
  }

  const peek = (userId: string): UserState | undefined => {
    const state = users.get(userId);
    return state && (state.forgetAt === null || now() < state.forgetAt) ? state : undefined;
  };

  /** Drops expired entries; if that empties the set, the last connection ended at the latest expiry. */
  function sweepEntries(state: UserState, at: number): void {
    let latest: number | undefined;
    for (const [id, expiresAt] of state.entries) {
      if (expiresAt <= at) {
        state.entries.delete(id);
        latest = Math.max(latest ?? expiresAt, expiresAt);
      }
    }
    if (latest === undefined) return;
    if (state.entries.size === 0 && (state.endedAt === null || latest > state.endedAt)) state.endedAt = latest;
    state.version += 1;
  }

  function schedule(userId: string, state: UserState): void {
    let at = state.deadline;
    for (const expiresAt of state.entries.values()) if (at === null || expiresAt < at) at = expiresAt;
    if (at === null) dueAt.delete(userId);
    else dueAt.set(userId, at);
  }

  /** A fact changed: a sweeper looks at the user soon, whoever announces it. */
  function changed(userId: string, state: UserState, at: number): void {
    state.version += 1;
    if (state.deadline === null || at + recheckMs < state.deadline) state.deadline = at + recheckMs;
    schedule(userId, state);
  }

  const present = (state: UserState, at: number): boolean =>
    state.entries.size > 0 || (state.endedAt !== null && at < state.endedAt + offlineGraceMs);

  return {
    async open(userId, connectionId, ttlMs) {
      const at = now();
      const state = stateOf(userId);
      sweepEntries(state, at);
      if (state.entries.size === 0 && state.published.status !== 'OFFLINE' && !present(state, at))
        return 'announce-offline-first';
      state.entries.set(connectionId, at + ttlMs);
      state.lastActivityAt = at;
      state.forgetAt = null;
      changed(userId, state, at);
      return 'opened';
    },
    async close(userId, connectionId) {
      const at = now();
      const state = peek(userId);
      if (!state) return false;
      sweepEntries(state, at);
      if (!state.entries.delete(connectionId)) {
        schedule(userId, state);
        return false;
      }
      if (state.entries.size === 0) state.endedAt = at;
      changed(userId, state, at);
      return true;
    },
    async heartbeat(entries, ttlMs) {
      const at = now();
      const missing: string[] = [];
      const touched = new Set<string>();
      for (const { userId, connectionId } of entries) {
        const state = peek(userId);
        if (state && !touched.has(userId)) {
          sweepEntries(state, at);
          touched.add(userId);
        }
        if (state?.entries.has(connectionId)) state.entries.set(connectionId, at + ttlMs);
        else missing.push(connectionId);
      }
      for (const userId of touched) schedule(userId, peek(userId)!);
      return missing;
    },
    async activity(userId) {
      const state = peek(userId);
      if (!state) return false;
      const at = now();
      state.lastActivityAt = at;
      state.version += 1;
      if (state.published.status === 'AWAY' && state.manual === null) {
        changed(userId, state, at);
        return true;
      }
      return false;
    },
    async setStatus(userId, change) {
      const at = now();
      const state = peek(userId);
      if (!state) return false;
      sweepEntries(state, at);
      if (!present(state, at)) {
        schedule(userId, state);
        return false;
      }
      state.manual = change.manual;
      if (change.statusMessage !== undefined) state.statusMessage = change.statusMessage;
      state.lastActivityAt = at;
      changed(userId, state, at);
      return true;
    },
    async read(userIds) {
      const at = now();
      return userIds.map((userId): PresenceRecord => {
        const state = peek(userId);
        if (!state) {
          return {
            userId,
            now: at,
            version: users.get(userId)?.version ?? 0,
            connections: 0,
            endedAt: null,
            lastActivityAt: null,
            manual: null,
            statusMessage: null,
            published: offlineView(userId),
            seq: 0,
            deadline: null,
          };
        }
        const before = state.version;
        sweepEntries(state, at);
        if (state.version !== before) schedule(userId, state);
        return {
          userId,
          now: at,
          version: state.version,
          connections: state.entries.size,
          endedAt: state.endedAt,
          lastActivityAt: state.lastActivityAt,
          manual: state.manual,
          statusMessage: state.statusMessage,
          published: state.published,
          seq: state.seq,
          deadline: state.deadline,
        };
      });
    },
    async claim(claims) {
      return claims.map(({ userId, version, derivedAt, view, deadline }): PresenceClaimResult => {
        const state = peek(userId);
        const currentVersion = state?.version ?? users.get(userId)?.version ?? 0;
        if (currentVersion !== version || (state !== undefined && derivedAt < state.derivedAt)) {
          return { outcome: 'stale', published: state?.published ?? offlineView(userId), seq: state?.seq ?? 0 };
        }
        if (!state) {
          // Nothing known: the only derivable view is the default OFFLINE, which needs no record.
          dueAt.delete(userId);
          return { outcome: 'unchanged', published: offlineView(userId), seq: 0 };
        }
        let outcome: PresenceClaimResult['outcome'] = 'unchanged';
        if (view !== null && viewKey(view) !== state.publishedKey) {
          state.seq = nextPresenceSeq(state.seq, derivedAt);
          state.published = view;
          state.publishedKey = viewKey(view);
          state.derivedAt = derivedAt;
          outcome = 'published';
          if (view.status === 'OFFLINE') {
            // DND and the message hold only while connected.
            state.manual = null;
            state.statusMessage = null;
            state.forgetAt = now() + retainOfflineMs;
          }
        }
        state.deadline = outcome === 'published' && view?.status === 'OFFLINE' ? null : deadline;
        schedule(userId, state);
        return { outcome, published: state.published, seq: state.seq };
      });
    },
    async due(limit, leaseMs) {
      const at = now();
      const ids: string[] = [];
      for (const [userId, due] of dueAt) {
        if (ids.length >= limit) break;
        if (due <= at) ids.push(userId);
      }
      for (const userId of ids) dueAt.set(userId, at + leaseMs);
      // Forget OFFLINE records past their retention (their lastSeenAt is in the database); a full
      // scan, so at most once a minute.
      if (at - forgottenAt >= 60_000) {
        forgottenAt = at;
        for (const [userId, state] of users) {
          if (state.forgetAt !== null && at >= state.forgetAt) {
            users.delete(userId);
            dueAt.delete(userId);
          }
        }
      }
      return ids;
    },
  };
}
