/**
 * In-process FraudStateStore: the single-instance (no REDIS_URL) implementation, and the one the
 * simulation drives with its own clock. Counts exactly like the Redis script (fraud.store.redis.ts).
 *
 * Distinct-account sets are Maps ordered by last activity (a touched member is deleted and
 * re-inserted at the end), so expiring the old ones costs O(expired). A sweep every
 * SWEEP_EVERY observations (or minute of observed time) drops keys whose newest entry left its
 * window, which bounds memory by the traffic of the last 10 minutes.
 */
import { WINDOW, type FraudKind } from './fraud.rules.js';
import { flat } from '../../infra/strings.js';
import {
  ALL_SCOPES,
  emptyCounts,
  FIELD_OF,
  fraudKeys,
  GROUP_CAP,
  RECENT_TIMES,
  USER_TIMELINE_CAP,
  type DecisionCounts,
  type FraudObservation,
  type FraudStateStore,
  type ObservedCounts,
} from './fraud.store.js';

const SWEEP_EVERY = 4_096;
const SWEEP_INTERVAL_MS = 60_000;

/** Ascending times (a user's timeline, a user's ballot repeats). */
class Timeline {
  times: number[] = [];

  add(at: number, cutoff: number, cap: number): void {
    const t = this.times;
    if (t.length === 0 || at >= t[t.length - 1]!) t.push(at);
    else {
      let i = t.length;
      while (i > 0 && t[i - 1]! > at) i -= 1;
      t.splice(i, 0, at);
    }
    this.trim(cutoff, cap);
  }

  /** Drops entries before `cutoff`, then the oldest beyond `cap`. */
  trim(cutoff: number, cap: number): void {
    const t = this.times;
    let drop = 0;
    while (drop < t.length && t[drop]! < cutoff) drop += 1;
    if (t.length - drop > cap) drop = t.length - cap;
    if (drop > 0) t.splice(0, drop);
  }

  /** Entries at or after `since`. */
  countSince(since: number): number {
    const t = this.times;
    let n = 0;
    for (let i = t.length - 1; i >= 0 && t[i]! >= since; i -= 1) n += 1;
    return n;
  }

  newest(): number {
    return this.times[this.times.length - 1] ?? Number.NEGATIVE_INFINITY;
  }
}

/** Distinct members with their last activity, oldest first. */
class Group {
  members = new Map<string, number>();
  newestAt = Number.NEGATIVE_INFINITY;

  add(member: string, at: number, cutoff: number, cap: number): number {
    const previous = this.members.get(member);
    const last = previous === undefined ? at : Math.max(previous, at);
    this.members.delete(member);
    this.members.set(flat(member), last);
    this.newestAt = Math.max(this.newestAt, last);
    return this.trim(cutoff, cap);
  }

  trim(cutoff: number, cap: number): number {
    for (const [member, last] of this.members) {
      if (last >= cutoff && this.members.size <= cap) break;
      this.members.delete(member);
    }
    return this.members.size;
  }
}

export function createMemoryFraudStore(): FraudStateStore & { size(): number } {
  const timelines = new Map<string, Timeline>();
  const groups = new Map<string, Group>();
  const claims = new Map<string, number>();
  const stats = new Map<string, DecisionCounts>();
  let sinceSweep = 0;
  let lastSweepAt = Number.NEGATIVE_INFINITY;

  function timeline(key: string): Timeline {
    let t = timelines.get(key);
    if (!t) timelines.set(flat(key), (t = new Timeline()));
    return t;
  }

  function group(key: string): Group {
    let g = groups.get(key);
    if (!g) groups.set(flat(key), (g = new Group()));
    return g;
  }

  function sweep(at: number): void {
    sinceSweep = 0;
    lastSweepAt = at;
    for (const [key, t] of timelines) if (t.newest() < at - WINDOW.user) timelines.delete(key);
    for (const [key, g] of groups) if (g.newestAt < at - WINDOW.group) groups.delete(key);
    for (const [key, expiresAt] of claims) if (expiresAt <= at) claims.delete(key);
  }

  return {
    async observe(o: FraudObservation): Promise<ObservedCounts> {
      sinceSweep += 1;
      if (sinceSweep >= SWEEP_EVERY || o.at - lastSweepAt >= SWEEP_INTERVAL_MS) sweep(o.at);
      const groupCutoff = o.at - WINDOW.group;
      const userCutoff = o.at - WINDOW.user;

      let adjustment = false;
      if (o.adjustable && o.target !== null) {
        const casts = timeline(fraudKeys.userTarget(o.userId, o.scopeId, o.target));
        casts.add(o.at, userCutoff, USER_TIMELINE_CAP);
        adjustment = casts.times.length > 1;
      }
      const user = timeline(fraudKeys.user(o.kind, o.userId));
      if (adjustment) user.trim(userCutoff, USER_TIMELINE_CAP);
      else user.add(o.at, userCutoff, USER_TIMELINE_CAP);
      const recentTimes = user.times.slice(-RECENT_TIMES);

      const ipUsers = group(fraudKeys.ip(o.kind, o.scopeId, o.ip)).add(o.userId, o.at, groupCutoff, GROUP_CAP);
      /** Distinct accounts in the group at `key`, this one added when it belongs there. */
      const subgroup = (key: string, member: boolean): number =>
        member
          ? group(key).add(o.userId, o.at, groupCutoff, GROUP_CAP)
          : (groups.get(key)?.trim(groupCutoff, GROUP_CAP) ?? 0);
      const ipInstantUsers = subgroup(fraudKeys.ipInstant(o.kind, o.scopeId, o.ip), o.instantAccount);
      const ipQuickUsers = subgroup(fraudKeys.ipQuick(o.kind, o.ip), o.quickAccount);
      const deviceUsers =
        o.deviceId === null
          ? null
          : group(fraudKeys.device(o.kind, o.scopeId, o.deviceId)).add(o.userId, o.at, groupCutoff, GROUP_CAP);

      let ballotRepeats: number | null = null;
      let ipSameBallotUsers: number | null = null;
      if (o.ballot !== null && o.target !== null) {
        const repeats = timeline(fraudKeys.ballotRepeats(o.userId, o.scopeId, o.ballot));
        repeats.add(o.at, userCutoff, USER_TIMELINE_CAP);
        ballotRepeats = repeats.times.length;
        ipSameBallotUsers = group(fraudKeys.ipBallot(o.scopeId, o.ip, o.target)).add(
          o.userId,
          o.at,
          groupCutoff,
          GROUP_CAP,
        );
      }

      return {
        adjustment,
        userActions10s: user.countSince(o.at - WINDOW.burst),
        userActions60s: user.countSince(o.at - WINDOW.minute),
        userActions10m: user.times.length,
        recentTimes,
        ipUsers,
        ipInstantUsers,
        ipQuickUsers,
        deviceUsers,
        ballotRepeats,
        ipSameBallotUsers,
      };
    },

    async claim(key, ttlMs, at) {
      const expiresAt = claims.get(key);
      if (expiresAt !== undefined && expiresAt > at) return false;
      claims.set(flat(key), at + ttlMs);
      return true;
    },

    countDecision(kind: FraudKind, scopeId: string, verdict) {
      for (const scope of [scopeId, ALL_SCOPES]) {
        const key = fraudKeys.stats(kind, scope);
        let counts = stats.get(key);
        if (!counts) stats.set(flat(key), (counts = emptyCounts()));
        counts[FIELD_OF[verdict]] += 1;
      }
    },

    async decisions(kind, scopeIds) {
      const total = emptyCounts();
      for (const scope of scopeIds ?? [ALL_SCOPES]) {
        const counts = stats.get(fraudKeys.stats(kind, scope));
        if (!counts) continue;
        total.allowed += counts.allowed;
        total.flagged += counts.flagged;
        total.blocked += counts.blocked;
      }
      return total;
    },

    async close() {},

    /** Keys held (tests: memory stays bounded). */
    size: () => timelines.size + groups.size + claims.size,
  };
}
