/**
 * Fraud scoring: pure functions from the features of one action (what the state store counted
 * when it recorded the action, plus the account's age) to a 0..100 risk score and a verdict.
 * No I/O, no clock: the unit tests feed hand-computed features, the simulation
 * (bench/fraud-sim.ts) replays thousands of voters through the same functions.
 *
 * Each rule maps features to a contribution s in 0..100 through piecewise-linear ramps (below a
 * ramp's first point the first value, above its last the last value). Contributions combine as
 * independent evidence, like a noisy OR:
 *
 *     score = 100 · (1 − Π (1 − s_i / 100))
 *
 * so the score never exceeds 100, one rule alone is worth exactly its own contribution (its cap
 * is meaningful: SHARED_IP alone tops out at 60, below the default FLAG threshold 70), and two
 * weaker signals reinforce each other (50 and 50 make 75) without the cliff of a capped sum
 * (where 60 + 40 already reaches 100). Verdict: BLOCK when score ≥ the block threshold, FLAG when
 * ≥ the alert threshold, else ALLOW; a score of 0 (no rule fired) is always ALLOW.
 *
 * One file on purpose: every rule and its thresholds side by side, as FRAUD.md lists them.
 */

export const FRAUD_RULES = [
  'RAPID_VOTING',
  'SHARED_IP',
  'DUPLICATE_DEVICE',
  'BOT_CADENCE',
  'DUPLICATE_BALLOT',
  'NEW_ACCOUNT_BULK',
] as const;
export type FraudRule = (typeof FRAUD_RULES)[number];
export type FraudKind = 'vote' | 'reaction';
export type FraudVerdict = 'ALLOW' | 'FLAG' | 'BLOCK';

/** The windows the state store counts in (ms). */
export const WINDOW = {
  /** A user's burst. */
  burst: 10_000,
  /** A user's minute. */
  minute: 60_000,
  /** A user's timeline (also the duplicate-ballot repeat window and the "young account" age). */
  user: 600_000,
  /** Distinct accounts per IP / device / ballot. */
  group: 300_000,
} as const;

/** The user's last gaps the cadence rule looks at. */
export const CADENCE_SAMPLES = 10;
/** An account acting less than this long after it was created (first seen) is "instant". */
export const INSTANT_ACCOUNT_MS = 10_000;
/**
 * An account acting less than this long after its first sight is "quick": its very first request
 * was (nearly) the action. People open the app and look before they vote (loading the
 * submissions alone takes about that long); a script that creates an account and votes with it
 * does not. The scripts voted within a second; 2 s leaves room for network latency.
 */
export const QUICK_ACCOUNT_MS = 2_000;

export interface BallotFeatures {
  /** Submissions on the ballot. */
  size: number;
  /** Times this user cast exactly this ballot (QUADRATIC: with the same votes) in this competition in the last 10 min, this one included. */
  userRepeats: number;
  /**
   * Distinct accounts that cast this ballot in this competition from this IP in the last 5 min,
   * this one included. QUADRATIC votes are left out: puppets pushing one submission could vary
   * them for free.
   */
  ipSameBallotUsers: number;
}

export interface FraudFeatures {
  kind: FraudKind;
  /**
   * This user's actions of this kind, this one included: last 10 s, last 60 s, last 10 min. A
   * QUADRATIC re-allocation of a submission the user voted on in the last 10 min (1, 2, 3 votes…)
   * is an adjustment of that action, not a new one: it is not counted, here or in intervalsMs.
   */
  userActions10s: number;
  userActions60s: number;
  userActions10m: number;
  /** Gaps (ms) between this user's most recent actions (last 10 min), oldest first, at most CADENCE_SAMPLES. */
  intervalsMs: readonly number[];
  /** Distinct accounts acting in this competition/session from this IP in the last 5 min, this one included. */
  ipUsers: number;
  /** Of those, accounts that acted within INSTANT_ACCOUNT_MS of their creation. */
  ipInstantUsers: number;
  /** Distinct accounts on this IP, in any competition, that voted within QUICK_ACCOUNT_MS of their creation, last 5 min. */
  ipQuickUsers: number;
  /** Distinct accounts on this device id in this competition/session in the last 5 min; null without a device id. */
  deviceUsers: number | null;
  /** Age of the account at this action; null when unknown. */
  accountAgeMs: number | null;
  /** Votes only. */
  ballot: BallotFeatures | null;
}

export type RuleDetails = Record<string, number | string | boolean | null>;

export interface RuleResult {
  rule: FraudRule;
  /** Contribution, 0..100. */
  score: number;
  details: RuleDetails;
}

export interface Thresholds {
  /** FRAUD_ALERT_THRESHOLD [70]: FLAG at or above. */
  alert: number;
  /** FRAUD_BLOCK_THRESHOLD [80]: BLOCK at or above. */
  block: number;
}

export interface Assessment {
  /** 0..100, one decimal. */
  score: number;
  verdict: FraudVerdict;
  /** Rules that contributed (score > 0), strongest first. */
  rules: RuleResult[];
  /** The strongest rule; null when none fired. */
  primary: FraudRule | null;
}

type Ramp = readonly (readonly [number, number])[];

/** Piecewise-linear interpolation through `points` (ascending x), flat beyond both ends. */
export function ramp(x: number, points: Ramp): number {
  const first = points[0]!;
  const last = points[points.length - 1]!;
  if (x <= first[0]) return first[1];
  if (x >= last[0]) return last[1];
  for (let i = 1; i < points.length; i += 1) {
    const [x1, y1] = points[i]!;
    if (x <= x1) {
      const [x0, y0] = points[i - 1]!;
      return y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
  }
  return last[1];
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

/** Per-kind parameters: reactions are meant to be frequent (tap, tap, tap), votes are not. */
export const PARAMS = {
  vote: {
    /** Actions in 10 s → contribution. Quadratic/approval voters adjusting a ballot reach 4–5. */
    rapid10s: [
      [3, 0],
      [4, 20],
      [6, 50],
      [10, 85],
    ],
    /** Actions in 60 s → contribution. */
    rapid60s: [
      [5, 0],
      [8, 40],
      [12, 60],
      [20, 85],
    ],
    /** Coefficient of variation of the gaps → contribution (humans: CV ≈ 0.5–1.5). */
    cadenceCv: [
      [0.05, 90],
      [0.15, 50],
      [0.3, 0],
    ],
    /** Fewer gaps than this: no verdict on the cadence. */
    cadenceMinGaps: 5,
    /** Confidence by number of gaps (a CV from 5 gaps is noisy). */
    cadenceConfidence: [
      [5, 0.7],
      [8, 1],
    ],
  },
  reaction: {
    rapid10s: [
      [20, 0],
      [30, 30],
      [50, 60],
      [80, 85],
    ],
    rapid60s: [
      [90, 0],
      [150, 50],
      [300, 85],
    ],
    // Humans tapping a button are rhythmic too (CV ≈ 0.1–0.2): only near-perfect clocks count.
    cadenceCv: [
      [0.02, 85],
      [0.05, 40],
      [0.1, 0],
    ],
    cadenceMinGaps: 8,
    cadenceConfidence: [
      [8, 0.8],
      [10, 1],
    ],
  },
} as const satisfies Record<FraudKind, Record<string, Ramp | number>>;

/** Distinct accounts per IP in 5 min → contribution. Capped at 60: a venue NAT alone never flags. */
export const SHARED_IP_RAMP: Ramp = [
  [25, 0],
  [50, 20],
  [100, 45],
  [200, 60],
];
/** The strength of the IP's strongest together-signal at which SHARED_IP counts in full. */
export const TOGETHER_FULL = 70;
/** Distinct accounts per device id in 5 min → contribution. Two (a shared family phone) are free. */
export const DEVICE_RAMP: Ramp = [
  [2, 0],
  [3, 40],
  [4, 60],
  [5, 75],
  [6, 85],
  [10, 95],
];
/** The same user casting the same ballot again (idempotent retries repeat 1–2 times). */
export const BALLOT_REPEAT_RAMP: Ramp = [
  [2, 0],
  [3, 25],
  [5, 50],
  [10, 70],
];
/** Same-ballot accounts from one IP (at least BALLOT_IP_MIN) → contribution before the share factor. */
export const BALLOT_IP_RAMP: Ramp = [
  [8, 25],
  [20, 50],
  [30, 65],
  [40, 70],
];
export const BALLOT_IP_MIN = 8;
/** Share of the IP's accounts in this competition that cast this very ballot → factor. Honest NATs split their votes. */
export const BALLOT_IP_SHARE: Ramp = [
  [0.6, 0],
  [0.9, 1],
];
/** Instant accounts per IP in 5 min → contribution before the share factor (for an instant account's action). */
export const INSTANT_GROUP_RAMP: Ramp = [
  [8, 0],
  [15, 35],
  [30, 60],
  [100, 70],
];
/** Share of the IP's accounts that are instant → factor. Most honest people look around before acting. */
export const INSTANT_GROUP_SHARE: Ramp = [
  [0.3, 0],
  [0.6, 1],
];
/**
 * Votes only: quick accounts per IP in 5 min → contribution, for a quick account's vote. No share
 * factor: an attacker's burst hidden in a venue's crowd counts as much as one on its own IP, while
 * the venue's people (who looked before voting) are never quick. Capped at 75: alone it flags
 * (the votes count, admins are told) but never blocks; with the same ballot, one device or a large
 * IP (SHARED_IP) it does.
 * Reactions: none, a clap button can be tapped within a second of the app loading.
 */
export const QUICK_GROUP_RAMP: Ramp = [
  [3, 0],
  [6, 70],
  [20, 75],
];

/** Mean, standard deviation and coefficient of variation of the gaps (population SD). */
export function cadenceStats(gaps: readonly number[]): { mean: number; sd: number; cv: number } {
  const n = gaps.length;
  if (n === 0) return { mean: 0, sd: 0, cv: Number.POSITIVE_INFINITY };
  const mean = gaps.reduce((s, g) => s + g, 0) / n;
  const variance = gaps.reduce((s, g) => s + (g - mean) ** 2, 0) / n;
  const sd = Math.sqrt(variance);
  return { mean, sd, cv: mean > 0 ? sd / mean : 0 };
}

// ------------------------------------------------------------------------------- the rules

export function rapidVoting(f: FraudFeatures): RuleResult {
  const p = PARAMS[f.kind];
  const score = Math.max(ramp(f.userActions10s, p.rapid10s), ramp(f.userActions60s, p.rapid60s));
  return {
    rule: 'RAPID_VOTING',
    score: round1(score),
    details: { last10s: f.userActions10s, last60s: f.userActions60s, last10m: f.userActions10m },
  };
}

/**
 * SHARED_IP weighs what the IP's accounts do together (the same ballot, instant or quick
 * accounts), in proportion to how strongly they do it: one person's rapid voting or editing is no
 * more suspicious because a thousand people share their venue's Wi-Fi, and a venue's favourite
 * drawing many of its votes is not a farm. Added to everything, the crowd's size flagged exactly
 * those people.
 */
export function sharedIp(f: FraudFeatures): RuleResult {
  const together = Math.min(1, Math.max(ballotCrowd(f), instantGroup(f), quickBurst(f)) / TOGETHER_FULL);
  return {
    rule: 'SHARED_IP',
    score: round1(ramp(f.ipUsers, SHARED_IP_RAMP) * together),
    details: { accounts5m: f.ipUsers, together: Math.round(together * 100) / 100 },
  };
}

export function duplicateDevice(f: FraudFeatures): RuleResult {
  const score = f.deviceUsers === null ? 0 : ramp(f.deviceUsers, DEVICE_RAMP);
  return { rule: 'DUPLICATE_DEVICE', score: round1(score), details: { accounts5m: f.deviceUsers } };
}

export function botCadence(f: FraudFeatures): RuleResult {
  const p = PARAMS[f.kind];
  const gaps = f.intervalsMs;
  if (gaps.length < p.cadenceMinGaps) return { rule: 'BOT_CADENCE', score: 0, details: { gaps: gaps.length } };
  const { mean, cv } = cadenceStats(gaps);
  const score = ramp(cv, p.cadenceCv) * ramp(gaps.length, p.cadenceConfidence);
  return {
    rule: 'BOT_CADENCE',
    score: round1(score),
    details: { gaps: gaps.length, meanGapMs: Math.round(mean), cv: Math.round(cv * 1000) / 1000 },
  };
}

const shareOfIp = (n: number, f: FraudFeatures): number => (f.ipUsers > 0 ? n / f.ipUsers : 0);

/** DUPLICATE_BALLOT (b): many of the IP's accounts casting this very ballot. */
function ballotCrowd(f: FraudFeatures): number {
  const b = f.ballot;
  if (b === null || b.ipSameBallotUsers < BALLOT_IP_MIN) return 0;
  return ramp(b.ipSameBallotUsers, BALLOT_IP_RAMP) * ramp(shareOfIp(b.ipSameBallotUsers, f), BALLOT_IP_SHARE);
}

/**
 * NEW_ACCOUNT_BULK (a): an instant account on an IP whose accounts are mostly instant. Only instant
 * accounts themselves: a burst on a venue's IP must not flag the venue's people voting next to it.
 */
function instantGroup(f: FraudFeatures): number {
  if (f.accountAgeMs === null || f.accountAgeMs >= INSTANT_ACCOUNT_MS) return 0;
  return ramp(f.ipInstantUsers, INSTANT_GROUP_RAMP) * ramp(shareOfIp(f.ipInstantUsers, f), INSTANT_GROUP_SHARE);
}

/** NEW_ACCOUNT_BULK (b): a quick account's vote on an IP with other quick accounts. */
function quickBurst(f: FraudFeatures): number {
  const quick = f.kind === 'vote' && f.accountAgeMs !== null && f.accountAgeMs < QUICK_ACCOUNT_MS;
  return quick ? ramp(f.ipQuickUsers, QUICK_GROUP_RAMP) : 0;
}

export function duplicateBallot(f: FraudFeatures): RuleResult {
  const b = f.ballot;
  if (b === null) return { rule: 'DUPLICATE_BALLOT', score: 0, details: {} };
  const repeats = ramp(b.userRepeats, BALLOT_REPEAT_RAMP);
  return {
    rule: 'DUPLICATE_BALLOT',
    score: round1(Math.max(repeats, ballotCrowd(f))),
    details: {
      repeats10m: b.userRepeats,
      sameBallotAccountsOnIp5m: b.ipSameBallotUsers,
      shareOfIp: Math.round(shareOfIp(b.ipSameBallotUsers, f) * 100) / 100,
    },
  };
}

/**
 * New accounts acting in bulk on one IP: instant accounts making up most of its accounts, or quick
 * ones voting in a burst. A new account's own activity is RAPID_VOTING's business: counting it here
 * too flagged people editing a ballot on the day they installed the app, and it buys an attacker
 * nothing (a RANKED or APPROVAL ballot replaces the previous one, QUADRATIC re-allocates).
 */
export function newAccountBulk(f: FraudFeatures): RuleResult {
  const age = f.accountAgeMs;
  return {
    rule: 'NEW_ACCOUNT_BULK',
    score: round1(Math.max(instantGroup(f), quickBurst(f))),
    details: {
      accountAgeS: age === null ? null : Math.round(age / 100) / 10,
      instantAccountsOnIp5m: f.ipInstantUsers,
      instantShareOfIp: Math.round(shareOfIp(f.ipInstantUsers, f) * 100) / 100,
      quickAccountsOnIp5m: f.ipQuickUsers,
    },
  };
}

export const RULES: readonly ((f: FraudFeatures) => RuleResult)[] = [
  rapidVoting,
  sharedIp,
  duplicateDevice,
  botCadence,
  duplicateBallot,
  newAccountBulk,
];

/** Noisy-OR of contributions in 0..100, one decimal. */
export function combine(scores: readonly number[]): number {
  const keep = scores.reduce((p, s) => p * (1 - Math.min(100, Math.max(0, s)) / 100), 1);
  return round1(100 * (1 - keep));
}

export function verdictFor(score: number, thresholds: Thresholds): FraudVerdict {
  if (score <= 0) return 'ALLOW';
  if (score >= thresholds.block) return 'BLOCK';
  if (score >= thresholds.alert) return 'FLAG';
  return 'ALLOW';
}

export function assess(features: FraudFeatures, thresholds: Thresholds): Assessment {
  const fired = RULES.map((rule) => rule(features))
    .filter((r) => r.score > 0)
    // Strongest first; ties in FRAUD_RULES order.
    .sort((a, b) => b.score - a.score || FRAUD_RULES.indexOf(a.rule) - FRAUD_RULES.indexOf(b.rule));
  const score = combine(fired.map((r) => r.score));
  return { score, verdict: verdictFor(score, thresholds), rules: fired, primary: fired[0]?.rule ?? null };
}
