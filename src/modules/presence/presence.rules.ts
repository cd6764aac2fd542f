/**
 * Presence as a pure function of a user's stored facts and the store's clock: no I/O, no timers.
 * Both stores keep the same facts; the tracker derives, compares with what was last announced,
 * and announces the difference. Every rule of the feature is in this file:
 *
 * - ONLINE: at least one live connection (or within the offline grace after the last one ended)
 *   and activity within `awayAfterMs`.
 * - AWAY: connected but no operation for `awayAfterMs`, or set by hand with setPresence(AWAY).
 * - DND: set by hand; wins over ONLINE/AWAY while the user stays connected.
 * - OFFLINE: no live connection for `offlineGraceMs` after the last one ended. The hand-set
 *   status and the status message are cleared then (they hold only while connected).
 *
 * During the grace the user keeps the status they had, with `connections: 0` and `lastSeenAt`
 * set, so a quick reconnect (page reload, a switch to another instance) never flaps to OFFLINE.
 */

export type PresenceStatus = 'ONLINE' | 'AWAY' | 'DND' | 'OFFLINE';
/** What setPresence can hold: ONLINE is the absence of a hand-set status. */
export type ManualStatus = 'AWAY' | 'DND';

export interface PresenceRules {
  /** PRESENCE_AWAY_AFTER_MS: no operation for this long while connected reads AWAY. */
  awayAfterMs: number;
  /** PRESENCE_OFFLINE_GRACE_MS: OFFLINE only this long after the last connection ended. */
  offlineGraceMs: number;
}

/** What a store knows about one user at one instant of its clock. */
export interface PresenceFacts {
  /** The store's clock (ms since the epoch) when the facts were read. */
  now: number;
  /** Live connection entries: not closed and not expired at `now`. */
  connections: number;
  /** When the live count last fell to 0 (a close, or the expiry of the last entry); null if never. */
  endedAt: number | null;
  /** Last operation of the user on any transport (opening a connection counts). */
  lastActivityAt: number | null;
  manual: ManualStatus | null;
  statusMessage: string | null;
}

/** The Presence object of the API, and the payload of `presence:<userId>` (JSON-safe). */
export interface PresenceView {
  userId: string;
  status: PresenceStatus;
  statusMessage: string | null;
  connections: number;
  /** ISO-8601. When the user's last connection ended; null while a connection is live. */
  lastSeenAt: string | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** Always the same key order, so two equal views serialise (and compare) equal. */
export function presenceView(
  userId: string,
  status: PresenceStatus,
  statusMessage: string | null,
  connections: number,
  lastSeenAt: string | null,
): PresenceView {
  return { userId, status, statusMessage, connections, lastSeenAt };
}

export const offlineView = (userId: string, lastSeenAt: string | null = null): PresenceView =>
  presenceView(userId, 'OFFLINE', null, 0, lastSeenAt);

export const viewKey = (view: PresenceView): string =>
  JSON.stringify(presenceView(view.userId, view.status, view.statusMessage, view.connections, view.lastSeenAt));

/** Connected now, or still inside the grace after the last connection ended. */
export function isPresent(facts: PresenceFacts, rules: PresenceRules): boolean {
  if (facts.connections > 0) return true;
  return facts.endedAt !== null && facts.now < facts.endedAt + rules.offlineGraceMs;
}

function awayDeadline(facts: PresenceFacts, rules: PresenceRules): number | null {
  if (facts.manual !== null || facts.lastActivityAt === null) return null;
  const at = facts.lastActivityAt + rules.awayAfterMs;
  return at > facts.now ? at : null;
}

export function derivePresence(userId: string, facts: PresenceFacts, rules: PresenceRules): PresenceView {
  if (!isPresent(facts, rules)) return offlineView(userId, iso(facts.endedAt));
  const status: PresenceStatus = facts.manual ?? (awayDeadline(facts, rules) === null ? 'AWAY' : 'ONLINE');
  return presenceView(
    userId,
    status,
    facts.statusMessage,
    facts.connections,
    facts.connections > 0 ? null : iso(facts.endedAt),
  );
}

/**
 * The next instant at which `derivePresence` changes by the passage of time alone (AWAY, or
 * OFFLINE at the end of the grace); null when only a new fact can change it. The expiry of
 * connection entries is the store's own deadline and is not included here.
 */
export function nextDeadline(facts: PresenceFacts, rules: PresenceRules): number | null {
  if (!isPresent(facts, rules)) return null;
  const away = awayDeadline(facts, rules);
  if (facts.connections > 0) return away;
  const offline = facts.endedAt! + rules.offlineGraceMs;
  return away === null ? offline : Math.min(away, offline);
}

/**
 * The seq of the next announcement: above the last one, and at least the store's clock, so that it
 * still grows after a store forgot an OFFLINE user's record (and with it the last seq).
 */
export const nextPresenceSeq = (lastSeq: number, now: number): number => Math.max(lastSeq + 1, now);
