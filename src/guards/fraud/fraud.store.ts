/**
 * The fraud guard's cross-instance state: sliding windows of who did what, from where. One call
 * per checked action records it and returns the counts the rules need (one Redis round trip: a
 * Lua script). Memory (one instance) and Redis (every instance sees every instance's traffic)
 * implementations count exactly alike; test/integration/fraud.test.ts runs both through the same
 * cases.
 *
 * Windows (see WINDOW in fraud.rules.ts), all "at or after now − window":
 *   user timeline     per user and kind: action times of the last 10 min (≤ USER_TIMELINE_CAP)
 *   ip accounts       per kind, scope (competition / session) and IP: distinct users, last 5 min
 *   ip instant        the same, only accounts that acted within INSTANT_ACCOUNT_MS of creation
 *   ip quick          per kind and IP, in every scope: accounts that acted within QUICK_ACCOUNT_MS of
 *                     creation (spreading a burst over competitions does not hide it)
 *   device accounts   per kind, scope and device id: distinct users, last 5 min
 *   ballot repeats    per user, competition and ballot fingerprint: a count, 10 min from the first
 *   ip ballot         per competition, IP and target fingerprint: distinct users, last 5 min
 *   user target       QUADRATIC: per user, competition and target: cast times, last 10 min; a cast
 *                     with an earlier one in the window is an adjustment and stays out of the
 *                     user timeline
 * Distinct-account sets keep at most GROUP_CAP members (the newest); the rules saturate far
 * below that, so an attacker flooding one key costs bounded memory.
 */
import { CADENCE_SAMPLES, type FraudKind, type FraudVerdict } from './fraud.rules.js';

export const USER_TIMELINE_CAP = 128;
export const GROUP_CAP = 1_000;

export interface FraudObservation {
  kind: FraudKind;
  /** Epoch ms of the action (the instance's clock; the simulation's clock in bench/fraud-sim.ts). */
  at: number;
  /** Unique per observation: the user's timeline member. */
  id: string;
  userId: string;
  /** competitionId for votes, sessionId for reactions. */
  scopeId: string;
  ip: string;
  deviceId: string | null;
  /** The account acted within INSTANT_ACCOUNT_MS of its creation. */
  instantAccount: boolean;
  /** The account acted within QUICK_ACCOUNT_MS of its creation. */
  quickAccount: boolean;
  /** Votes: a fingerprint of the exact ballot (its submission ids in order, and QUADRATIC votes); null otherwise. */
  ballot: string | null;
  /** Votes: a fingerprint of what the ballot is for (its submission ids in order, without QUADRATIC votes); null otherwise. */
  target: string | null;
  /**
   * QUADRATIC: re-casting a target the user cast in the last 10 min re-allocates votes on it (the
   * UI invites stepping 1, 2, 3…): an adjustment of that action, not a new one.
   */
  adjustable: boolean;
}

export interface ObservedCounts {
  /** This action was an adjustment: it is not in the user's timeline (the counts and times below). */
  adjustment: boolean;
  userActions10s: number;
  userActions60s: number;
  userActions10m: number;
  /** The user's most recent action times (ascending; this one last unless it was an adjustment), at most CADENCE_SAMPLES + 1. */
  recentTimes: number[];
  ipUsers: number;
  ipInstantUsers: number;
  ipQuickUsers: number;
  /** null without a device id. */
  deviceUsers: number | null;
  /** null without a ballot. */
  ballotRepeats: number | null;
  ipSameBallotUsers: number | null;
}

export interface DecisionCounts {
  allowed: number;
  flagged: number;
  blocked: number;
}

export const emptyCounts = (): DecisionCounts => ({ allowed: 0, flagged: 0, blocked: 0 });

export const FIELD_OF: Record<FraudVerdict, keyof DecisionCounts> = {
  ALLOW: 'allowed',
  FLAG: 'flagged',
  BLOCK: 'blocked',
};

export interface FraudStateStore {
  /** Records the action and returns the windows' counts, this action included. */
  observe(observation: FraudObservation): Promise<ObservedCounts>;
  /** True for the first caller of `key` within ttlMs (cluster-wide on Redis): alert de-duplication. */
  claim(key: string, ttlMs: number, at: number): Promise<boolean>;
  /** Counts one decision for the kind in `scopeId` (and in the kind's total). Cheap; never throws. */
  countDecision(kind: FraudKind, scopeId: string, verdict: FraudVerdict): void;
  /** Decisions of a kind summed over `scopeIds`, or over everything when null. */
  decisions(kind: FraudKind, scopeIds: readonly string[] | null): Promise<DecisionCounts>;
  /** Flushes what is buffered. */
  close(): Promise<void>;
}

/** How many of the user's latest times the store returns. */
export const RECENT_TIMES = CADENCE_SAMPLES + 1;

/**
 * Redis keys (the memory store uses the same strings). Hash tags group what one script touches:
 * `{u:<userId>}` the user's own windows, `{ip:<ip>}` an address's windows, a device's one key; so
 * each of the store's scripts stays in one slot on Redis Cluster.
 */
export const fraudKeys = {
  user: (kind: FraudKind, userId: string) => `fraud:${kind}:{u:${userId}}`,
  ip: (kind: FraudKind, scopeId: string, ip: string) => `fraud:${kind}:{ip:${ip}}:${scopeId}`,
  ipInstant: (kind: FraudKind, scopeId: string, ip: string) => `fraud:${kind}:{ip:${ip}}:i:${scopeId}`,
  ipQuick: (kind: FraudKind, ip: string) => `fraud:${kind}:{ip:${ip}}:q`,
  device: (kind: FraudKind, scopeId: string, deviceId: string) => `fraud:${kind}:dev:${scopeId}:${deviceId}`,
  ballotRepeats: (userId: string, scopeId: string, ballot: string) => `fraud:vote:{u:${userId}}:b:${scopeId}:${ballot}`,
  ipBallot: (scopeId: string, ip: string, target: string) => `fraud:vote:{ip:${ip}}:b:${scopeId}:${target}`,
  userTarget: (userId: string, scopeId: string, target: string) => `fraud:vote:{u:${userId}}:t:${scopeId}:${target}`,
  claim: (key: string) => `fraud:claim:${key}`,
  stats: (kind: FraudKind, scopeId: string) => `fraud:stats:${kind}:${scopeId}`,
};

/** The scope id that sums every scope of a kind in the decision counters. */
export const ALL_SCOPES = '*';
