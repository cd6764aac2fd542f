/**
 * Fraud scoring without I/O: every rule's table with hand-computed features, the noisy-OR
 * combination, the thresholds, the memory store's windows on a fake clock, the engine and the
 * guard (FLAG proceeds with an alert, BLOCK throws FRAUD_BLOCKED, a store failure fails open),
 * the account-age loader and the two threshold variables.
 */
import { describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { AppError } from '../../src/errors.js';
import type { Caller, FraudSubject } from '../../src/guards/guards.js';
import { createAccountAge } from '../../src/guards/fraud/account-age.js';
import { ballotFingerprint, createFraudEngine, gapsOf } from '../../src/guards/fraud/fraud.engine.js';
import { createFraudGuard, type FraudAlertInput } from '../../src/guards/fraud/fraud.guard.js';
import {
  assess,
  botCadence,
  combine,
  duplicateBallot,
  duplicateDevice,
  newAccountBulk,
  ramp,
  rapidVoting,
  sharedIp,
  verdictFor,
  type FraudFeatures,
} from '../../src/guards/fraud/fraud.rules.js';
import { createMemoryFraudStore } from '../../src/guards/fraud/fraud.store.memory.js';
import type { FraudObservation, FraudStateStore } from '../../src/guards/fraud/fraud.store.js';

const MIN = 60_000;

/** Features of an unremarkable vote: one action, alone on its IP, an old account. */
function features(overrides: Partial<FraudFeatures> = {}): FraudFeatures {
  return {
    kind: 'vote',
    userActions10s: 1,
    userActions60s: 1,
    userActions10m: 1,
    intervalsMs: [],
    ipUsers: 1,
    ipInstantUsers: 0,
    ipQuickUsers: 0,
    deviceUsers: 1,
    accountAgeMs: 30 * 24 * 3600_000,
    ballot: { size: 1, userRepeats: 1, ipSameBallotUsers: 1 },
    ...overrides,
  };
}

const T = { alert: 70, block: 80 };

describe('ramp', () => {
  const points = [
    [10, 0],
    [20, 50],
    [40, 70],
  ] as const;
  it.each([
    [0, 0],
    [10, 0],
    [15, 25],
    [20, 50],
    [30, 60],
    [40, 70],
    [1000, 70],
  ])('ramp(%d) = %d', (x, y) => expect(ramp(x, points)).toBeCloseTo(y, 10));
});

describe('rules', () => {
  it.each([
    // [10 s, 60 s] → score
    [1, 1, 0],
    [3, 3, 0],
    [4, 4, 20],
    [5, 5, 35],
    [6, 6, 50],
    [10, 10, 85],
    [3, 8, 40], // 60 s ramp: 8 → 40
    [3, 10, 50], // 8 → 40, 12 → 60: 10 → 50
    [2, 20, 85],
  ])('RAPID_VOTING (vote): %d in 10 s, %d in 60 s → %d', (n10, n60, score) => {
    expect(rapidVoting(features({ userActions10s: n10, userActions60s: n60 })).score).toBe(score);
  });

  it.each([
    [10, 10, 0],
    [25, 25, 15], // 20 → 0, 30 → 30
    [30, 100, 30], // 60 s: (100 − 90) / 60 · 50 = 8.3 < 30
    [50, 120, 60],
    [80, 300, 85],
  ])('RAPID_VOTING (reaction): %d in 10 s, %d in 60 s → %d', (n10, n60, score) => {
    expect(rapidVoting(features({ kind: 'reaction', userActions10s: n10, userActions60s: n60 })).score).toBe(score);
  });

  it.each([
    // [accounts on the IP, quick accounts voting on it (this one quick), score]
    [5000, 0, 0], // a venue whose people do nothing together: 0, however many
    [25, 20, 0],
    [26, 20, 0.8],
    [50, 20, 20],
    [75, 20, 32.5],
    [100, 20, 45],
    [150, 20, 52.5],
    [200, 20, 60],
    [5000, 20, 60],
    [100, 5, 30], // the burst so far is worth 46.7 of 70: two thirds of 45
  ])(
    'SHARED_IP: %d accounts on one IP in 5 min, %d quick ones → %d (never more than 60: alone it neither flags nor blocks)',
    (users, quick, score) => {
      expect(sharedIp(features({ ipUsers: users, ipQuickUsers: quick, accountAgeMs: 500 })).score).toBe(score);
    },
  );

  it('SHARED_IP weighs a crowd casting one ballot by how strongly it does', () => {
    const crowd = (same: number, users: number) =>
      sharedIp(features({ ipUsers: users, ballot: { size: 1, userRepeats: 1, ipSameBallotUsers: same } })).score;
    expect(crowd(200, 200)).toBe(60); // DUPLICATE_BALLOT 70: in full
    expect(crowd(150, 200)).toBe(30); // share 0.75: DUPLICATE_BALLOT 70 · 0.5 = 35, half of 60
    expect(crowd(100, 200)).toBe(0); // a favourite with half the venue's votes: nothing together
  });

  it.each([
    [null, 0],
    [1, 0],
    [2, 0],
    [3, 40],
    [4, 60],
    [5, 75],
    [6, 85],
    [8, 90],
    [10, 95],
    [50, 95],
  ])('DUPLICATE_DEVICE: %s accounts on one device in 5 min → %d', (users, score) => {
    expect(duplicateDevice(features({ deviceUsers: users })).score).toBe(score);
  });

  it.each([
    ['4 metronomic gaps: too few to judge', 'vote', [500, 500, 500, 500], 0],
    ['5 metronomic gaps: 90 × confidence 0.7', 'vote', [500, 500, 500, 500, 500], 63],
    ['6 metronomic gaps: 90 × 0.8', 'vote', [500, 501, 499, 500, 500, 500], 72],
    ['10 metronomic gaps: 90', 'vote', Array(10).fill(500), 90],
    ['CV 0.1 over 8 gaps: 70', 'vote', [900, 1100, 900, 1100, 900, 1100, 900, 1100], 70],
    ['human gaps (CV ≈ 0.8)', 'vote', [1000, 3000, 2000, 8000, 500, 4000], 0],
    ['7 reaction gaps: too few', 'reaction', Array(7).fill(500), 0],
    ['8 metronomic reaction gaps: 85 × 0.8', 'reaction', Array(8).fill(500), 68],
    ['10 metronomic reaction gaps: 85', 'reaction', Array(10).fill(500), 85],
    ['rhythmic human tapping (CV 0.1): 0', 'reaction', [270, 330, 270, 330, 270, 330, 270, 330, 270, 330], 0],
  ] as const)('BOT_CADENCE: %s', (_name, kind, gaps, score) => {
    expect(botCadence(features({ kind, intervalsMs: gaps })).score).toBe(score);
  });

  it.each([
    ['no ballot', null, 1, 0],
    ['first cast', { size: 1, userRepeats: 1, ipSameBallotUsers: 1 }, 1, 0],
    ['one retry', { size: 1, userRepeats: 2, ipSameBallotUsers: 1 }, 1, 0],
    ['3 repeats', { size: 1, userRepeats: 3, ipSameBallotUsers: 1 }, 1, 25],
    ['4 repeats', { size: 1, userRepeats: 4, ipSameBallotUsers: 1 }, 1, 37.5],
    ['10 repeats', { size: 1, userRepeats: 10, ipSameBallotUsers: 1 }, 1, 70],
    ['7 same ballots on an IP of 7: below the minimum', { size: 1, userRepeats: 1, ipSameBallotUsers: 7 }, 7, 0],
    ['8 of 8', { size: 1, userRepeats: 1, ipSameBallotUsers: 8 }, 8, 25],
    ['20 of 20', { size: 1, userRepeats: 1, ipSameBallotUsers: 20 }, 20, 50],
    ['20 of 40: a NAT that splits its votes', { size: 1, userRepeats: 1, ipSameBallotUsers: 20 }, 40, 0],
    ['30 of 40: share 0.75 → half of 65', { size: 1, userRepeats: 1, ipSameBallotUsers: 30 }, 40, 32.5],
    ['40 of 40', { size: 3, userRepeats: 1, ipSameBallotUsers: 40 }, 40, 70],
  ] as const)('DUPLICATE_BALLOT: %s', (_name, ballot, ipUsers, score) => {
    expect(duplicateBallot(features({ ballot, ipUsers })).score).toBe(score);
  });

  it.each([
    ['unknown age', { accountAgeMs: null, userActions10m: 20 }, 0],
    ['an 11-minute-old account', { accountAgeMs: 11 * MIN, userActions10m: 20 }, 0],
    ['young, 20 votes of its own: RAPID_VOTING’s business', { accountAgeMs: MIN, userActions10m: 20 }, 0],
    ['young, 15 instant accounts of 15 on the IP', { accountAgeMs: 1_000, ipUsers: 15, ipInstantUsers: 15 }, 35],
    ['young, 15 instant of 100: a venue', { accountAgeMs: 1_000, ipUsers: 100, ipInstantUsers: 15 }, 0],
    ['young, 40 instant of 60: 60 + 10 · 10 / 70', { accountAgeMs: 1_000, ipUsers: 60, ipInstantUsers: 40 }, 61.4],
    [
      'young, 20 instant of 50: share 0.4 → a third of 43.3',
      { accountAgeMs: 1_000, ipUsers: 50, ipInstantUsers: 20 },
      14.4,
    ],
    ['old account among 40 instant ones', { accountAgeMs: 3 * 24 * 3600_000, ipUsers: 40, ipInstantUsers: 40 }, 0],
    [
      'young but looked for 30 s, among 40 instant accounts of 50',
      { accountAgeMs: 30_000, ipUsers: 50, ipInstantUsers: 40 },
      0,
    ],
    [
      'quick (0.5 s after first sight), 5 quick accounts on the IP',
      { accountAgeMs: 500, ipUsers: 5, ipInstantUsers: 5, ipQuickUsers: 5 },
      46.7,
    ],
    ['quick, 6 quick accounts on the IP', { accountAgeMs: 500, ipUsers: 6, ipInstantUsers: 6, ipQuickUsers: 6 }, 70],
    [
      'quick, 10 quick accounts hidden among 300 on a venue IP: no share factor',
      { accountAgeMs: 500, ipUsers: 300, ipInstantUsers: 10, ipQuickUsers: 10 },
      71.4,
    ],
    [
      'quick, 50 quick accounts: capped at 75',
      { accountAgeMs: 1_999, ipUsers: 50, ipInstantUsers: 50, ipQuickUsers: 50 },
      75,
    ],
    [
      'looked for 5 s, on an IP with 20 quick accounts of 300',
      { accountAgeMs: 5_000, ipUsers: 300, ipInstantUsers: 30, ipQuickUsers: 20 },
      0,
    ],
    [
      'a quick reaction among 20 quick accounts: votes only',
      { kind: 'reaction', ballot: null, accountAgeMs: 500, ipUsers: 300, ipInstantUsers: 20, ipQuickUsers: 20 },
      0,
    ],
  ] as const)('NEW_ACCOUNT_BULK: %s', (_name, overrides, score) => {
    expect(newAccountBulk(features(overrides)).score).toBe(score);
  });
});

describe('combination and verdict', () => {
  it.each([
    [[], 0],
    [[50], 50],
    [[50, 50], 75],
    [[60, 50], 80],
    [[60, 40], 76],
    [[70], 70],
    [[100, 10], 100],
    [[30, 30, 30], 65.7],
  ])('noisy OR of %j = %d', (scores, total) => expect(combine(scores)).toBe(total));

  it.each([
    [0, 'ALLOW'],
    [69.9, 'ALLOW'],
    [70, 'FLAG'],
    [79.9, 'FLAG'],
    [80, 'BLOCK'],
    [100, 'BLOCK'],
  ] as const)('score %d → %s with the default thresholds', (score, verdict) =>
    expect(verdictFor(score, T)).toBe(verdict),
  );

  it('uses configured thresholds; a score of 0 is never an alert', () => {
    expect(verdictFor(40, { alert: 30, block: 50 })).toBe('FLAG');
    expect(verdictFor(50, { alert: 30, block: 50 })).toBe('BLOCK');
    expect(verdictFor(0, { alert: 0, block: 0 })).toBe('ALLOW');
    expect(verdictFor(0.1, { alert: 0, block: 100 })).toBe('FLAG');
  });

  it('an unremarkable vote scores 0', () => {
    expect(assess(features(), T)).toEqual({ score: 0, verdict: 'ALLOW', rules: [], primary: null });
  });

  it('lists the contributing rules strongest first, and combines them', () => {
    // Sock puppets on one IP, no device id: 40 accounts, all instant, one ballot.
    const result = assess(
      features({
        ipUsers: 40,
        ipInstantUsers: 40,
        deviceUsers: null,
        accountAgeMs: 2_000,
        ballot: { size: 1, userRepeats: 1, ipSameBallotUsers: 40 },
      }),
      T,
    );
    expect(result.rules.map((r) => [r.rule, r.score])).toEqual([
      ['DUPLICATE_BALLOT', 70],
      ['NEW_ACCOUNT_BULK', 61.4],
      ['SHARED_IP', 12],
    ]);
    // 1 − 0.3 · 0.386 · 0.88 = 0.8981
    expect(result.score).toBe(89.8);
    expect(result.verdict).toBe('BLOCK');
    expect(result.primary).toBe('DUPLICATE_BALLOT');
  });

  it('many honest accounts behind one NAT (the test suite on 127.0.0.1) doing nothing together score 0', () => {
    // 500 distinct accounts on one IP within 5 min, varied ballots, nothing else remarkable.
    const result = assess(
      features({
        ipUsers: 500,
        ipInstantUsers: 20,
        accountAgeMs: 5 * MIN,
        ballot: { size: 1, userRepeats: 1, ipSameBallotUsers: 150 },
      }),
      T,
    );
    expect(result).toEqual({ score: 0, verdict: 'ALLOW', rules: [], primary: null });
  });
});

describe('engine and memory store on a fake clock', () => {
  const caller = (userId: string, ip = '198.51.100.1', deviceId: string | null = null): Caller => ({
    viewer: { id: userId, name: userId, role: 'AUDIENCE' },
    clientIp: ip,
    deviceId,
  });
  const vote = (competitionId: string, ...submissionIds: string[]): FraudSubject => ({
    kind: 'vote',
    competitionId,
    submissionIds,
  });

  function engine(createdAt: Record<string, number> = {}) {
    const store = createMemoryFraudStore();
    let id = 0;
    return {
      store,
      engine: createFraudEngine({
        store,
        thresholds: T,
        accountCreatedAt: async (userId) => createdAt[userId] ?? 0,
        newId: () => `obs-${(id += 1)}`,
      }),
    };
  }

  it('counts a user’s actions in 10 s, 60 s and 10 min, inclusive of the window start', async () => {
    const { engine: e } = engine();
    const times = [0, 50_000, 59_000, 60_000, 600_000];
    const seen = [];
    for (const at of times) seen.push((await e.evaluate(vote('c1', `s${at}`), caller('u1'), 1_000_000 + at))!.features);
    const last = seen[seen.length - 1]!;
    // At t = 600 000: 10 s → itself; 60 s → itself; 10 min: 0 is exactly 600 000 ago (kept) → all 5.
    expect([last.userActions10s, last.userActions60s, last.userActions10m]).toEqual([1, 1, 5]);
    expect(seen[3]!.userActions10s).toBe(3); // 50 000 is exactly 10 s before 60 000: counted
    expect(seen[3]!.userActions60s).toBe(4); // 0 is exactly 60 s before 60 000
    expect(last.intervalsMs).toEqual([50_000, 9_000, 1_000, 540_000]);
  });

  it('blocks a metronomic bot at its 6th vote and a device shared by 6 accounts at the 6th', async () => {
    const { engine: e } = engine();
    const verdicts = [];
    for (let i = 0; i < 8; i += 1)
      verdicts.push((await e.evaluate(vote('c1', `s${i}`), caller('bot'), 1_000_000 + i * 500))!.verdict);
    // 6th: RAPID 6 in 10 s → 50, cadence 5 gaps → 63: 1 − 0.5 · 0.37 = 81.5
    expect(verdicts).toEqual(['ALLOW', 'ALLOW', 'ALLOW', 'ALLOW', 'ALLOW', 'BLOCK', 'BLOCK', 'BLOCK']);

    const device = [];
    for (let i = 0; i < 7; i += 1)
      device.push(
        (await e.evaluate(vote('c2', `s${i}`), caller(`p${i}`, '203.0.113.9', 'dev-1'), 2_000_000 + i * 10_000))!,
      );
    expect(device.map((d) => [d.verdict, d.score])).toEqual([
      ['ALLOW', 0],
      ['ALLOW', 0],
      ['ALLOW', 40],
      ['ALLOW', 60],
      ['FLAG', 75],
      ['BLOCK', 85],
      ['BLOCK', 87.5],
    ]);
  });

  it('forgets accounts after 5 minutes and keeps its memory bounded', async () => {
    const { engine: e, store } = engine();
    for (let i = 0; i < 5; i += 1) await e.evaluate(vote('c1', 'a'), caller(`u${i}`, '198.51.100.7', 'dev'), 1_000_000);
    const later = (await e.evaluate(vote('c1', 'a'), caller('u9', '198.51.100.7', 'dev'), 1_000_000 + 5 * MIN + 1))!;
    expect([later.features.ipUsers, later.features.deviceUsers, later.features.ballot?.ipSameBallotUsers]).toEqual([
      1, 1, 1,
    ]);
    // An hour of one new user per second, each on its own IP: only the last 10 minutes are held.
    for (let s = 0; s < 3_600; s += 1)
      await e.evaluate(vote('c1', 'a'), caller(`x${s}`, `10.0.${s >> 8}.${s & 255}`), 2_000_000 + s * 1_000);
    expect(store.size()).toBeLessThan(5 * 700);
  });

  it('never flags a QUADRATIC voter adjusting an allocation step by step, about a second apart', async () => {
    // Opened the app 30 s ago and looked; then 1, 2, 3, 4, 5 votes on s1, 1, 2, 3 on s2, back to 4 on s1.
    const start = 5_000_000;
    const { engine: e } = engine({ q: start - 30_000 });
    const steps: [string, number][] = [
      ['s1', 1],
      ['s1', 2],
      ['s1', 3],
      ['s1', 4],
      ['s1', 5],
      ['s2', 1],
      ['s2', 2],
      ['s2', 3],
      ['s1', 4],
    ];
    const decisions = [];
    for (const [i, [submission, votes]] of steps.entries()) {
      const subject: FraudSubject = { kind: 'vote', competitionId: 'quad', submissionIds: [submission], votes };
      decisions.push(
        (await e.evaluate(subject, caller('q', '192.0.2.7', 'q-phone'), start + i * 1_000 + (i % 3) * 80))!,
      );
    }
    expect(decisions.map((d) => [d.verdict, d.score])).toEqual(steps.map(() => ['ALLOW', 0]));
    // The adjustments of one submission are one action: two submissions touched, so two actions.
    expect(decisions.map((d) => d.features.userActions10s)).toEqual([1, 1, 1, 1, 1, 2, 2, 2, 2]);
  });

  it('still counts every exact repeat of a QUADRATIC ballot (same submission, same votes)', async () => {
    const { engine: e } = engine();
    const subject: FraudSubject = { kind: 'vote', competitionId: 'quad', submissionIds: ['s1'], votes: 3 };
    const repeats = [];
    for (let i = 0; i < 5; i += 1)
      repeats.push((await e.evaluate(subject, caller('r'), 1_000_000 + i * 20_000))!.features.ballot!.userRepeats);
    expect(repeats).toEqual([1, 2, 3, 4, 5]);
  });

  it('flags a burst of brand-new accounts on one IP, each voting within a second of first sight', async () => {
    // 30 tokens seen for the first time within 3 s, each account's first request is its vote
    // (0.5 s after first sight), ballots spread over 6 submissions, a device id each.
    const start = 6_000_000;
    const createdAt: Record<string, number> = {};
    for (let i = 0; i < 30; i += 1) createdAt[`b${i}`] = start + i * 100;
    const { engine: e } = engine(createdAt);
    const decisions = [];
    for (let i = 0; i < 30; i += 1)
      decisions.push(
        (await e.evaluate(
          vote('c-burst', `s${i % 6}`),
          caller(`b${i}`, '203.0.113.40', `burst-${i}`),
          start + i * 100 + 500,
        ))!,
      );
    // Quick accounts on the IP: 4 → 23.3, 5 → 46.7, 6 → 70 (FLAG), … 20+ → 75; from the 26th
    // account SHARED_IP adds a little (30 accounts: 4 → 76). At least FLAG: the votes count and
    // admins are told; the burst alone never blocks.
    expect(decisions.map((d) => d.verdict)).toEqual([
      ...Array<string>(5).fill('ALLOW'),
      ...Array<string>(25).fill('FLAG'),
    ]);
    expect(decisions.slice(3, 6).map((d) => d.score)).toEqual([23.3, 46.7, 70]);
    expect(decisions[29]!.rules.map((r) => [r.rule, r.score])).toEqual([
      ['NEW_ACCOUNT_BULK', 75],
      ['SHARED_IP', 4],
    ]);
  });

  it('keeps a venue crowd clean: 300 people on one Wi-Fi IP who opened the app minutes ago and vote in a rush', async () => {
    // Accounts first seen over the 10 minutes before voting opens (half of them within one
    // minute when the QR code is shown), then 300 votes within 40 s of "vote now", ballots spread
    // over 8 submissions, and 30 of them are QUADRATIC voters stepping 1…4 votes a second apart.
    const open = 10_000_000;
    const random = (
      (seed) => () =>
        ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646
    )(7);
    const createdAt: Record<string, number> = {};
    for (let i = 0; i < 300; i += 1)
      createdAt[`v${i}`] = i % 2 === 0 ? open - 120_000 + random() * 60_000 : open - 600_000 + random() * 540_000;
    const { engine: e } = engine(createdAt);
    const casts: { at: number; user: string; subject: FraudSubject }[] = [];
    for (let i = 0; i < 300; i += 1) {
      const at = open + Math.round(random() * 40_000);
      if (i % 10 === 0) {
        for (let votes = 1; votes <= 4; votes += 1)
          casts.push({
            at: at + votes * 1_000,
            user: `v${i}`,
            subject: { kind: 'vote', competitionId: 'venue-q', submissionIds: ['q1'], votes },
          });
      } else casts.push({ at, user: `v${i}`, subject: vote('venue', `s${Math.floor(random() * random() * 8)}`) });
    }
    casts.sort((a, b) => a.at - b.at);
    const alerts = [];
    for (const c of casts) {
      const d = (await e.evaluate(c.subject, caller(c.user, '198.51.100.200', `phone-${c.user}`), c.at))!;
      if (d.verdict !== 'ALLOW') alerts.push([c.user, d.verdict, d.rules.map((r) => r.rule)]);
    }
    expect(alerts).toEqual([]);
  });

  it('fingerprints a ballot by its submissions in order', () => {
    expect(ballotFingerprint([])).toBeNull();
    expect(ballotFingerprint(['a', 'b'])).toBe(ballotFingerprint(['a', 'b']));
    expect(ballotFingerprint(['a', 'b'])).not.toBe(ballotFingerprint(['b', 'a']));
    // QUADRATIC: the votes are part of the ballot, not of its target.
    expect(ballotFingerprint(['a'], 1)).not.toBe(ballotFingerprint(['a'], 2));
    expect(ballotFingerprint(['a'], 1)).not.toBe(ballotFingerprint(['a']));
    expect(ballotFingerprint(['a'], 3)).toBe(ballotFingerprint(['a'], 3));
    expect(gapsOf([1, 3, 6, 10])).toEqual([2, 3, 4]);
  });

  it('does not score anonymous callers', async () => {
    const { engine: e } = engine();
    expect(await e.evaluate(vote('c', 'a'), { viewer: null, clientIp: '1.2.3.4', deviceId: null })).toBeNull();
  });
});

describe('guard', () => {
  const subject: FraudSubject = { kind: 'reaction', sessionId: 'sess-1' };
  const caller: Caller = {
    viewer: { id: 'u1', name: 'u1', role: 'AUDIENCE' },
    clientIp: '198.51.100.1',
    deviceId: 'd',
  };

  function guardWith(score: number, verdict: 'ALLOW' | 'FLAG' | 'BLOCK') {
    const store = createMemoryFraudStore();
    const raised: FraudAlertInput[] = [];
    const guard = createFraudGuard({
      engine: {
        evaluate: async () => ({
          score,
          verdict,
          rules: score > 0 ? [{ rule: 'DUPLICATE_DEVICE', score, details: { accounts5m: 5 } }] : [],
          primary: score > 0 ? 'DUPLICATE_DEVICE' : null,
          kind: 'reaction',
          scopeId: 'sess-1',
          userId: 'u1',
          ip: '198.51.100.1',
          deviceId: 'd',
          at: 0,
          subject,
          features: features({ kind: 'reaction', ballot: null }),
        }),
      },
      store,
      alerts: { raise: (alert) => raised.push(alert) },
      onError: () => undefined,
    });
    return { guard, store, raised };
  }

  it('ALLOW: no alert', async () => {
    const { guard, store, raised } = guardWith(0, 'ALLOW');
    await guard.check(subject, caller);
    expect(raised).toEqual([]);
    expect(await store.decisions('reaction', ['sess-1'])).toEqual({ allowed: 1, flagged: 0, blocked: 0 });
  });

  it('FLAG: proceeds and raises an alert carrying the session in details', async () => {
    const { guard, store, raised } = guardWith(75, 'FLAG');
    await expect(guard.check(subject, caller)).resolves.toBeUndefined();
    expect(raised).toEqual([
      {
        userId: 'u1',
        competitionId: null,
        sessionId: 'sess-1',
        rule: 'DUPLICATE_DEVICE',
        score: 75,
        action: 'FLAG',
        details: {
          kind: 'reaction',
          sessionId: 'sess-1',
          rules: [{ rule: 'DUPLICATE_DEVICE', score: 75, accounts5m: 5 }],
          ip: '198.51.100.1',
          deviceId: 'd',
        },
      },
    ]);
    expect(await store.decisions('reaction', null)).toEqual({ allowed: 0, flagged: 1, blocked: 0 });
  });

  it('BLOCK: raises an alert and throws FRAUD_BLOCKED without revealing rules or thresholds', async () => {
    const { guard, raised } = guardWith(85, 'BLOCK');
    const error = await guard.check(subject, caller).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({
      code: 'FRAUD_BLOCKED',
      retryable: false,
      details: { reason: 'SUSPICIOUS_ACTIVITY' },
    });
    expect(JSON.stringify((error as AppError).details) + (error as AppError).message).not.toMatch(/DEVICE|85|80/);
    expect(raised.map((a) => a.action)).toEqual(['BLOCK']);
  });

  it('fails open when the state store fails, and says so', async () => {
    const failing: FraudStateStore = {
      ...createMemoryFraudStore(),
      observe: async () => Promise.reject(new Error('redis down')),
    };
    const onError = vi.fn();
    const guard = createFraudGuard({
      engine: createFraudEngine({ store: failing, thresholds: T, accountCreatedAt: async () => 0 }),
      store: failing,
      alerts: { raise: () => undefined },
      onError,
    });
    await expect(guard.check(subject, caller)).resolves.toBeUndefined();
    await expect(guard.check(subject, caller)).resolves.toBeUndefined();
    expect(onError).toHaveBeenCalledTimes(1); // not once per request
  });
});

describe('memory store', () => {
  const observation = (o: Partial<FraudObservation>): FraudObservation => ({
    kind: 'vote',
    at: 0,
    id: Math.random().toString(36),
    userId: 'u',
    scopeId: 'c',
    ip: 'ip',
    deviceId: null,
    instantAccount: false,
    quickAccount: false,
    ballot: null,
    target: null,
    adjustable: false,
    ...o,
  });

  it('claims a key once per ttl', async () => {
    const store = createMemoryFraudStore();
    expect(await store.claim('k', 60_000, 0)).toBe(true);
    expect(await store.claim('k', 60_000, 59_999)).toBe(false);
    expect(await store.claim('k', 60_000, 60_000)).toBe(true);
  });

  it('keeps separate windows per kind and per competition', async () => {
    const store = createMemoryFraudStore();
    await store.observe(observation({ userId: 'a', scopeId: 'c1' }));
    expect((await store.observe(observation({ userId: 'b', scopeId: 'c2' }))).ipUsers).toBe(1);
    expect((await store.observe(observation({ userId: 'b', scopeId: 'c1', kind: 'reaction' }))).ipUsers).toBe(1);
    expect((await store.observe(observation({ userId: 'b', scopeId: 'c1' }))).ipUsers).toBe(2);
  });
});

describe('account age', () => {
  it('loads the misses of one tick with one query and caches the answers', async () => {
    const load = vi.fn(
      async (ids: readonly string[]) => new Map(ids.filter((id) => id !== 'ghost').map((id) => [id, id.length])),
    );
    const ages = createAccountAge({ load });
    expect(await Promise.all(['a', 'bb', 'a', 'ghost'].map((id) => ages.createdAt(id)))).toEqual([1, 2, 1, null]);
    expect(load).toHaveBeenCalledTimes(1);
    expect(load.mock.calls[0]![0]).toEqual(['a', 'bb', 'ghost']);
    expect(await ages.createdAt('bb')).toBe(2);
    expect(load).toHaveBeenCalledTimes(1);
    expect(await ages.createdAt('ghost')).toBeNull(); // unknown users are asked again
    expect(load).toHaveBeenCalledTimes(2);
  });
});

describe('FRAUD_* configuration', () => {
  it('defaults to 70 / 80 and reads both', () => {
    expect(loadConfig({})).toMatchObject({
      fraudDetectionEnabled: true,
      fraudAlertThreshold: 70,
      fraudBlockThreshold: 80,
    });
    expect(
      loadConfig({ FRAUD_ALERT_THRESHOLD: '40', FRAUD_BLOCK_THRESHOLD: '40', FRAUD_DETECTION_ENABLED: 'false' }),
    ).toMatchObject({
      fraudDetectionEnabled: false,
      fraudAlertThreshold: 40,
      fraudBlockThreshold: 40,
    });
  });

  it.each([
    ['FRAUD_ALERT_THRESHOLD', '101', {}],
    ['FRAUD_ALERT_THRESHOLD', '-1', {}],
    ['FRAUD_BLOCK_THRESHOLD', 'high', {}],
    ['FRAUD_BLOCK_THRESHOLD', '70.5', {}],
    ['FRAUD_ALERT_THRESHOLD', '90', { FRAUD_BLOCK_THRESHOLD: '80' }],
  ])('rejects %s=%s', (name, value, extra) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value, ...extra });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(name);
  });
});
