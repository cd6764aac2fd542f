/**
 * Where presence facts live, shared by every instance: the memory store (one process, the
 * embedded default) or Redis. The store only keeps facts and makes each step atomic; the rules
 * (presence.rules.ts) and the announcing (presence.tracker.ts) are the same for both.
 *
 * Per user:
 * - connection entries `connectionId → expiresAt` (the store's clock). The owning instance
 *   refreshes them every ttl/3 (`heartbeat`); an instance that dies stops refreshing and its
 *   entries expire. The live count is the number of entries not expired.
 * - facts: when the live count last fell to 0, last activity, hand-set status and message, and a
 *   `version` that every change of a fact increments;
 * - the last announced view with its seq and the instant it was derived at;
 * - a deadline: when time alone changes the derived view next (AWAY, end of the grace).
 *
 * A user is "due" at the earlier of its deadline and its first entry's expiry; every instance's
 * sweeper asks for due users and reconciles them. Announcing is a compare-and-set (`claim`): it
 * succeeds only if no fact changed since the facts it was derived from were read, and never for a
 * derivation older than the announced one. So each change is announced once, cluster-wide,
 * whichever instance sees it first.
 */
import type { ManualStatus, PresenceFacts, PresenceView } from './presence.rules.js';

export interface PresenceRecord extends PresenceFacts {
  userId: string;
  /** Incremented by every change of a fact; 0 for a user the store knows nothing about. */
  version: number;
  /** Last announced view (OFFLINE, lastSeenAt null, seq 0 for a user never announced). */
  published: PresenceView;
  seq: number;
  /** The deadline the user is scheduled for, as last claimed (see nextDeadline). */
  deadline: number | null;
}

export interface PresenceClaim {
  userId: string;
  /** The record's version the view was derived from. */
  version: number;
  /** The record's `now`. */
  derivedAt: number;
  /** The view to announce, or null to only reschedule. */
  view: PresenceView | null;
  deadline: number | null;
}

export interface PresenceClaimResult {
  /** published: this caller announces `view` with `seq`; stale: re-read and derive again. */
  outcome: 'published' | 'unchanged' | 'stale';
  /** The announced view after the claim (the caller's when published). */
  published: PresenceView;
  seq: number;
}

export interface ConnectionEntry {
  userId: string;
  connectionId: string;
}

/** setPresence's change: `manual` is always set (null = ONLINE); `statusMessage` undefined keeps it. */
export interface StatusChange {
  manual: ManualStatus | null;
  statusMessage?: string | null;
}

export interface PresenceStore {
  /**
   * Adds a live entry (and counts as activity). 'announce-offline-first' when the user is OFFLINE
   * by the rules but that has not been announced yet: reconcile, then open again, so that the
   * OFFLINE (and the clearing of DND and message that comes with it) is never skipped.
   */
  open(userId: string, connectionId: string, ttlMs: number): Promise<'opened' | 'announce-offline-first'>;
  /** Removes the entry; false when it was not there (already expired and swept). */
  close(userId: string, connectionId: string): Promise<boolean>;
  /** Extends the entries to now + ttlMs; returns the connection ids that were no longer live. */
  heartbeat(entries: readonly ConnectionEntry[], ttlMs: number): Promise<string[]>;
  /** Records an operation of a known user; true when that may end an announced AWAY. */
  activity(userId: string): Promise<boolean>;
  /** false when the user is OFFLINE by the rules (nothing to hold the status). */
  setStatus(userId: string, change: StatusChange): Promise<boolean>;
  /** Facts and announced state, one record per id in order; expired entries are swept first. */
  read(userIds: readonly string[]): Promise<PresenceRecord[]>;
  claim(claims: readonly PresenceClaim[]): Promise<PresenceClaimResult[]>;
  /**
   * Up to `limit` users whose due time has passed. They are leased for `leaseMs` (not handed to
   * another sweeper meanwhile); a claim reschedules them.
   */
  due(limit: number, leaseMs: number): Promise<string[]>;
}

export interface PresenceStoreOptions {
  /** PRESENCE_OFFLINE_GRACE_MS (the store refuses setStatus and checks reconnects against it). */
  offlineGraceMs: number;
  /** After a change, a sweeper looks at the user within this long, in case its instance dies before announcing. */
  recheckMs?: number;
  /** An OFFLINE user's record (last seq, lastSeenAt) is kept this long, then forgotten. */
  retainOfflineMs?: number;
}

export const DEFAULT_RECHECK_MS = 1_000;
export const DEFAULT_RETAIN_OFFLINE_MS = 3_600_000;
