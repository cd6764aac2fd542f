/**
 * This instance's side of presence: its live connections (from the transports), their
 * heartbeats, the sweeper, and the one reconcile step that announces changes.
 *
 * Reconcile (`read`): read the users' records, derive each view at the store's clock, and claim
 * the ones that differ from what was announced; a successful claim is announced here, once,
 * cluster-wide (the store's compare-and-set decides; a stale claim re-reads). Every path uses it:
 * a connection opened or closed, an activity that ends AWAY, setPresence, a query, a
 * subscription's snapshot, and the sweeper, which picks up what time alone changes (AWAY, the end
 * of the grace, the expiry of a dead instance's entries) and what a dying instance left
 * unannounced.
 *
 * Presence never breaks a connection: store failures are logged, and heartbeats repair them
 * (an entry the store lost is opened again).
 */
import {
  derivePresence,
  nextDeadline,
  viewKey,
  type ManualStatus,
  type PresenceRules,
  type PresenceView,
} from './presence.rules.js';
import type { PresenceClaim, PresenceRecord, PresenceStore } from './presence.store.js';

export type PresenceTransport = 'graphql-ws' | 'sse';

/** One live connection, as a transport holds it. */
export interface ConnectionLease {
  /** Settles once the store has the entry (or after a short wait): then acknowledge the client. Never rejects. */
  readonly ready: Promise<void>;
  /** The connection ended (idempotent). */
  close(): void;
}

/** An announced view and its seq (strictly increasing per user). */
export interface AnnouncedPresence {
  view: PresenceView;
  seq: number;
}

export interface PresenceTracker {
  /** A live authenticated connection of `userId` on this instance, until `close()`. */
  open(userId: string, transport: PresenceTransport): ConnectionLease;
  /** Any operation of the user, on any transport (throttled per user). */
  activity(userId: string): void;
  /** Reconciles and returns the announced presence of each id (in order, duplicates kept). */
  read(userIds: readonly string[]): Promise<AnnouncedPresence[]>;
  /** setPresence's store step; 'offline' when the user has no connection to hold it. */
  setStatus(
    userId: string,
    manual: ManualStatus | null,
    statusMessage: string | null | undefined,
  ): Promise<AnnouncedPresence | 'offline'>;
  /** One sweeper pass: reconciles the users whose due time has passed. */
  sweep(): Promise<void>;
  /** One heartbeat: extends this instance's entries; re-opens any the store lost. */
  heartbeat(): Promise<void>;
  /** Live connections on this instance. */
  localConnections(): number;
  /** Stops the timers and removes this instance's entries (their users' grace starts now). */
  close(): Promise<void>;
}

export interface PresenceTrackerOptions {
  store: PresenceStore;
  instanceId: string;
  rules: PresenceRules;
  /** PRESENCE_CONNECTION_TTL_MS: an entry not refreshed for this long has expired. */
  connectionTtlMs: number;
  /** Default ttl / 3. */
  heartbeatMs?: number;
  /** Default: a quarter of the shortest of ttl, grace and away, within 50..1000 ms. */
  sweepMs?: number;
  /** Activity is written at most once per this long per user (default away / 10, at most 10 s). */
  activityThrottleMs?: number;
  /** Announces a change on `presence:<userId>`. */
  announce(userId: string, seq: number, view: PresenceView): void;
  /** The user went OFFLINE (lastSeenAt is persisted by the caller). */
  onOffline?(userId: string, lastSeenAt: Date): Promise<void>;
  onError(message: string, details: Record<string, unknown>): void;
  /** false: no timers (tests drive sweep() and heartbeat()). */
  timers?: boolean;
}

const CLAIM_ATTEMPTS = 5;
const SWEEP_BATCH = 200;
/** The transports wait this long at most for the entry before they acknowledge a connection. */
const OPEN_WAIT_MS = 2_000;
/** close() waits this long at most for in-flight store steps (a store that hangs must not hold the shutdown). */
const CLOSE_WAIT_MS = 5_000;

interface LocalConnection {
  id: string;
  userId: string;
  transport: PresenceTransport;
  /** This connection's store steps, one after another (open before close). */
  chain: Promise<void>;
}

export function createPresenceTracker(options: PresenceTrackerOptions): PresenceTracker {
  const { store, instanceId, rules, connectionTtlMs, announce, onError } = options;
  const heartbeatMs = options.heartbeatMs ?? Math.max(50, Math.floor(connectionTtlMs / 3));
  const sweepMs =
    options.sweepMs ??
    Math.min(
      1_000,
      Math.max(
        50,
        Math.floor(Math.min(connectionTtlMs, rules.offlineGraceMs || connectionTtlMs, rules.awayAfterMs) / 4),
      ),
    );
  const activityThrottleMs = options.activityThrottleMs ?? Math.min(10_000, Math.floor(rules.awayAfterMs / 10));

  const local = new Map<string, LocalConnection>();
  const pending = new Set<Promise<unknown>>();
  const lastActivity = new Map<string, number>();
  let counter = 0;
  let closed = false;
  let sweeping = false;

  /** Keeps the promise until it settles, so close() can wait for in-flight store steps. */
  function track<T>(promise: Promise<T>): Promise<T> {
    pending.add(promise);
    void promise.finally(() => pending.delete(promise)).catch(() => undefined);
    return promise;
  }

  function announceClaimed(userId: string, view: PresenceView, seq: number): void {
    announce(userId, seq, view);
    if (view.status === 'OFFLINE' && view.lastSeenAt !== null && options.onOffline) {
      track(options.onOffline(userId, new Date(view.lastSeenAt))).catch((error: unknown) =>
        onError('presence: persisting lastSeenAt failed', { userId, error }),
      );
    }
  }

  /**
   * Derive, compare, claim, announce; re-read what went stale. `force` claims even unchanged
   * users (the sweeper's leased users must be rescheduled).
   */
  async function reconcile(userIds: readonly string[], force = false): Promise<Map<string, AnnouncedPresence>> {
    const result = new Map<string, AnnouncedPresence>();
    let todo = [...new Set(userIds)];
    let last = new Map<string, PresenceRecord>();
    for (let attempt = 0; todo.length > 0 && attempt < CLAIM_ATTEMPTS; attempt += 1) {
      const records = await store.read(todo);
      last = new Map(records.map((r) => [r.userId, r]));
      const claims: PresenceClaim[] = [];
      for (const record of records) {
        const view = derivePresence(record.userId, record, rules);
        const deadline = nextDeadline(record, rules);
        const changed = viewKey(view) !== viewKey(record.published);
        if (!changed && deadline === record.deadline && !force) {
          result.set(record.userId, { view: record.published, seq: record.seq });
          continue;
        }
        claims.push({
          userId: record.userId,
          version: record.version,
          derivedAt: record.now,
          view: changed ? view : null,
          deadline,
        });
      }
      const outcomes = await store.claim(claims);
      todo = [];
      outcomes.forEach((outcome, i) => {
        const userId = claims[i]!.userId;
        if (outcome.outcome === 'stale') {
          todo.push(userId);
          return;
        }
        if (outcome.outcome === 'published') announceClaimed(userId, outcome.published, outcome.seq);
        result.set(userId, { view: outcome.published, seq: outcome.seq });
      });
    }
    // Still racing after several attempts (a storm of changes): answer with the announced state;
    // whoever changed it last announces the rest.
    for (const userId of todo) {
      const record = last.get(userId)!;
      result.set(userId, { view: record.published, seq: record.seq });
    }
    return result;
  }

  async function openEntry(connection: LocalConnection): Promise<void> {
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt += 1) {
      if (!local.has(connection.id)) return; // closed meanwhile
      const opened = await store.open(connection.userId, connection.id, connectionTtlMs);
      if (opened === 'opened') break;
      await reconcile([connection.userId]); // announces the OFFLINE the user reached meanwhile
    }
    await reconcile([connection.userId]);
  }

  function step(connection: LocalConnection, what: string, work: () => Promise<void>): Promise<void> {
    connection.chain = track(
      connection.chain
        .then(work)
        .catch((error: unknown) =>
          onError(`presence: ${what} failed`, { userId: connection.userId, transport: connection.transport, error }),
        ),
    );
    return connection.chain;
  }

  async function sweep(): Promise<void> {
    if (sweeping || closed) return;
    sweeping = true;
    try {
      const due = await store.due(SWEEP_BATCH, sweepMs * 4);
      if (due.length > 0) await reconcile(due, true);
      const now = Date.now();
      for (const [userId, at] of lastActivity) if (now - at >= activityThrottleMs) lastActivity.delete(userId);
    } finally {
      sweeping = false;
    }
  }

  async function heartbeat(): Promise<void> {
    if (closed || local.size === 0) return;
    const connections = [...local.values()];
    const missing = new Set(
      await store.heartbeat(
        connections.map((c) => ({ userId: c.userId, connectionId: c.id })),
        connectionTtlMs,
      ),
    );
    for (const connection of connections) {
      // Expired and swept while this instance was unreachable or stalled: it is live, open it again.
      if (missing.has(connection.id) && local.has(connection.id))
        void step(connection, 're-open', () => openEntry(connection));
    }
  }

  const timers: NodeJS.Timeout[] = [];
  if (options.timers !== false) {
    const every = (ms: number, what: string, fn: () => Promise<void>) => {
      const timer = setInterval(
        () => void track(fn()).catch((error: unknown) => onError(`presence: ${what} failed`, { error })),
        ms,
      );
      timer.unref();
      timers.push(timer);
    };
    every(heartbeatMs, 'heartbeat', heartbeat);
    every(sweepMs, 'sweep', sweep);
  }

  return {
    open(userId, transport) {
      const connection: LocalConnection = {
        id: `${instanceId}:${(counter += 1)}`,
        userId,
        transport,
        chain: Promise.resolve(),
      };
      if (closed) return { ready: Promise.resolve(), close: () => undefined };
      local.set(connection.id, connection);
      const opened = step(connection, 'open', () => openEntry(connection));
      let timer: NodeJS.Timeout | undefined;
      const ready = Promise.race([
        opened,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, OPEN_WAIT_MS))),
      ]).finally(() => clearTimeout(timer));
      let done = false;
      return {
        ready,
        close() {
          if (done) return;
          done = true;
          // Not local any more: tracker.close() has already removed it.
          if (!local.delete(connection.id)) return;
          void step(connection, 'close', async () => {
            await store.close(userId, connection.id);
            await reconcile([userId]);
          });
        },
      };
    },
    activity(userId) {
      if (closed) return;
      const now = Date.now();
      const last = lastActivity.get(userId);
      // A write less than the throttle ago means the user is not AWAY (throttle <= away / 10).
      if (last !== undefined && now - last < activityThrottleMs) return;
      lastActivity.set(userId, now);
      void track(
        (async () => {
          if (await store.activity(userId)) await reconcile([userId]);
        })(),
      ).catch((error: unknown) => onError('presence: activity failed', { userId, error }));
    },
    async read(userIds) {
      const announced = await reconcile(userIds);
      return userIds.map((id) => announced.get(id)!);
    },
    async setStatus(userId, manual, statusMessage) {
      const change = statusMessage === undefined ? { manual } : { manual, statusMessage };
      if (!(await store.setStatus(userId, change))) return 'offline';
      lastActivity.set(userId, Date.now());
      return (await reconcile([userId])).get(userId)!;
    },
    sweep,
    heartbeat,
    localConnections: () => local.size,
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of timers) clearInterval(timer);
      for (const connection of [...local.values()]) {
        local.delete(connection.id);
        void step(connection, 'close', async () => {
          await store.close(connection.userId, connection.id);
          await reconcile([connection.userId]);
        });
      }
      const deadline = Date.now() + CLOSE_WAIT_MS;
      while (pending.size > 0 && Date.now() < deadline) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.allSettled([...pending]),
          new Promise((resolve) => (timer = setTimeout(resolve, deadline - Date.now()))),
        ]);
        clearTimeout(timer);
      }
    },
  };
}
