/**
 * Fraud detection on a simulated event: honest crowds (false positives) and attacks (detection),
 * replayed through the real scoring (src/guards/fraud/fraud.rules.ts), engine and memory state
 * store with a simulated clock: fast, deterministic for a seed, no server. FRAUD.md's tables.
 *
 *   npx tsx bench/fraud-sim.ts                  # 5 seeds, markdown tables (FRAUD.md), ~30 s
 *   npx tsx bench/fraud-sim.ts --seeds 1 --json # raw numbers
 *   npx tsx bench/fraud-sim.ts --alert 60 --block 75
 *
 * Four competitions: SIMPLE over 8 submissions (Zipf popularity), APPROVAL over 6, RANKED over 4
 * (Plackett–Luce) and QUADRATIC over 5 with 30 credits (v votes on a submission cost v²).
 *
 * Honest voters, three kinds:
 * - regular (70 %): 1–3 ballots (50/30/20 %) in SIMPLE, APPROVAL or RANKED, lognormal 20 s apart;
 * - QUADRATIC allocators (25 %): the UI's +/− buttons, one castVote per step: 1–3 submissions,
 *   each stepped 1, 2, 3… up to its votes (Σ v² ≤ 30) about a second apart (lognormal median 1 s,
 *   σ 0.35, at least 250 ms), a quarter overshoot by one and step back, 3 s between submissions,
 *   a fifth come back a minute later to move one submission by one;
 * - editors (5 %): 5–8 APPROVAL or RANKED ballots about 4 s apart (changing their mind).
 *
 * The crowd: `--voters` (3,000) over a 15-minute voting window; half arrive in the first two
 * minutes (the "vote now" rush), the rest uniformly; 30 % have accounts from earlier days, the
 * others are created when they arrive (users are created on first sight of a token) and look
 * before voting: first ballot after a lognormal delay (median 30 s, σ 0.9). Half have their own
 * IP, half sit behind NATs of 5–30 people; device ids are distinct, 10 % send none, 3 % share a
 * tablet with one other voter.
 *
 * Venue Wi-Fi crowds (100, 300, 1,000 people on one IP): doors open 10 minutes before voting; 60 %
 * open the app before voting opens (half of them in the minute the QR code is on screen), 40 %
 * during the first 10 minutes of voting; 80 % are new accounts created on opening the app. Those
 * already in vote when voting opens (lognormal median 15 s after, σ 0.8); latecomers look first
 * (median 25 s, σ 0.6). The same three kinds of voters.
 *
 * Rate limits are not simulated (they run before the fraud stage: RATE_LIMIT_VOTES_PER_MINUTE
 * would refuse some allocator steps with RATE_LIMITED, and stop the fastest attacks sooner), so
 * the fraud stage sees more honest casts here than it would in production.
 */
import { createFraudEngine } from '../src/guards/fraud/fraud.engine.js';
import type { Caller, FraudSubject } from '../src/guards/guards.js';
import type { FraudRule } from '../src/guards/fraud/fraud.rules.js';
import { createMemoryFraudStore } from '../src/guards/fraud/fraud.store.memory.js';

// ------------------------------------------------------------------------------ randomness

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  constructor(readonly next: () => number) {}
  uniform(a: number, b: number): number {
    return a + (b - a) * this.next();
  }
  int(a: number, b: number): number {
    return Math.floor(this.uniform(a, b + 1));
  }
  normal(): number {
    const u = Math.max(this.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  /** Lognormal with the given median and log-space sigma. */
  lognormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }
  exponential(mean: number): number {
    return -mean * Math.log(Math.max(this.next(), 1e-12));
  }
  pick<T>(items: readonly T[], weights?: readonly number[]): T {
    if (!weights) return items[Math.floor(this.next() * items.length)]!;
    const total = weights.reduce((s, w) => s + w, 0);
    let r = this.next() * total;
    for (let i = 0; i < items.length; i += 1) {
      r -= weights[i]!;
      if (r <= 0) return items[i]!;
    }
    return items[items.length - 1]!;
  }
}

// ------------------------------------------------------------------------------ the event

const START = Date.UTC(2026, 10, 22, 19, 0, 0);
const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;
const WINDOW_MS = 15 * MINUTE;

const SIMPLE = Array.from({ length: 8 }, (_, i) => `simple-s${i}`);
const SIMPLE_WEIGHTS = SIMPLE.map((_, i) => 1 / (i + 1));
const APPROVAL = Array.from({ length: 6 }, (_, i) => `approval-s${i}`);
const APPROVAL_P = [0.6, 0.5, 0.4, 0.3, 0.2, 0.1];
const RANKED = Array.from({ length: 4 }, (_, i) => `ranked-s${i}`);
const RANKED_WEIGHTS = [4, 3, 2, 1];
const QUADRATIC = Array.from({ length: 5 }, (_, i) => `quadratic-s${i}`);
const QUADRATIC_WEIGHTS = QUADRATIC.map((_, i) => 1 / (i + 1));
const QUADRATIC_CREDITS = 30;

const simpleBallot = (rng: Rng): FraudSubject => ({
  kind: 'vote',
  competitionId: 'simple',
  submissionIds: [rng.pick(SIMPLE, SIMPLE_WEIGHTS)],
});

function approvalBallot(rng: Rng): FraudSubject {
  const chosen = APPROVAL.filter((_, i) => rng.next() < APPROVAL_P[i]!);
  return { kind: 'vote', competitionId: 'approval', submissionIds: chosen.length > 0 ? chosen : [rng.pick(APPROVAL)] };
}

/** Plackett–Luce: draw without replacement by popularity. */
function rankedBallot(rng: Rng): FraudSubject {
  const left = [...RANKED];
  const weights = [...RANKED_WEIGHTS];
  const order: string[] = [];
  while (left.length > 0) {
    const item = rng.pick(left, weights);
    const i = left.indexOf(item);
    left.splice(i, 1);
    weights.splice(i, 1);
    order.push(item);
  }
  return { kind: 'vote', competitionId: 'ranked', submissionIds: order };
}

/** A SIMPLE, APPROVAL or RANKED ballot. */
function regularBallot(rng: Rng): FraudSubject {
  const which = rng.int(0, 2);
  return which === 0 ? simpleBallot(rng) : which === 1 ? approvalBallot(rng) : rankedBallot(rng);
}

const quadratic = (submissionId: string, votes: number): FraudSubject => ({
  kind: 'vote',
  competitionId: 'quadratic',
  submissionIds: [submissionId],
  votes,
});

const VOTER_KINDS = ['regular', 'allocator', 'editor'] as const;
type VoterKind = (typeof VOTER_KINDS)[number];

function voterKind(rng: Rng): VoterKind {
  const r = rng.next();
  return r < 0.25 ? 'allocator' : r < 0.3 ? 'editor' : 'regular';
}

interface Cast {
  at: number;
  subject: FraudSubject;
}

/** One honest voter's casts, the first at `first`. */
function honestCasts(rng: Rng, kind: VoterKind, first: number): Cast[] {
  const casts: Cast[] = [];
  let at = first;
  const cast = (subject: FraudSubject) => casts.push({ at: Math.round(at), subject });
  if (kind === 'regular') {
    const ballots = rng.pick([1, 2, 3], [50, 30, 20]);
    for (let i = 0; i < ballots; i += 1) {
      if (i > 0) at += rng.lognormal(20 * SECOND, 1);
      cast(regularBallot(rng));
    }
  } else if (kind === 'editor') {
    const ballot = rng.next() < 0.5 ? approvalBallot : rankedBallot;
    const ballots = rng.int(5, 8);
    for (let i = 0; i < ballots; i += 1) {
      if (i > 0) at += rng.lognormal(4 * SECOND, 0.7);
      cast(ballot(rng));
    }
  } else {
    // The +/− buttons: every step is a castVote setting this submission's votes.
    const step = () => (at += Math.max(250, rng.lognormal(SECOND, 0.35)));
    const count = rng.pick([1, 2, 3], [40, 40, 20]);
    const chosen: string[] = [];
    while (chosen.length < count) {
      const submission = rng.pick(QUADRATIC, QUADRATIC_WEIGHTS);
      if (!chosen.includes(submission)) chosen.push(submission);
    }
    const votes = chosen.map(() => rng.int(1, 5));
    const cost = () => votes.reduce((c, v) => c + v * v, 0);
    while (cost() > QUADRATIC_CREDITS) votes[votes.indexOf(Math.max(...votes))]! -= 1;
    const fits = (i: number, v: number) => cost() - votes[i]! ** 2 + v * v <= QUADRATIC_CREDITS;
    chosen.forEach((submission, i) => {
      if (i > 0) at += rng.lognormal(3 * SECOND, 0.5);
      const target = votes[i]!;
      for (let v = 1; v <= target; v += 1) {
        if (v > 1) step();
        cast(quadratic(submission, v));
      }
      if (rng.next() < 0.25 && fits(i, target + 1)) {
        step();
        cast(quadratic(submission, target + 1));
        step();
        cast(quadratic(submission, target));
      }
    });
    if (rng.next() < 0.2) {
      at += rng.lognormal(MINUTE, 0.7);
      const i = rng.int(0, chosen.length - 1);
      const v = fits(i, votes[i]! + 1) ? votes[i]! + 1 : votes[i]! - 1;
      votes[i] = v;
      cast(quadratic(chosen[i]!, v));
    }
  }
  return casts;
}

interface SimUser {
  id: string;
  createdAt: number;
  ip: string;
  deviceId: string | null;
}

interface SimEvent {
  at: number;
  user: SimUser;
  subject: FraudSubject;
  /** `honest:<kind>`, `venue:<kind>` or the attack's name. */
  group: string;
}

/** Device ids: distinct, 10 % none, 3 % a tablet shared by two voters (call in voter order). */
function deviceIds(rng: Rng): (v: number) => string | null {
  let sharedTablet: string | null = null;
  return (v) => {
    const d = rng.next();
    if (d < 0.1) return null;
    if (d >= 0.13) return `device-${v}`;
    // The second of a pair takes the first one's tablet.
    if (sharedTablet) {
      const id = sharedTablet;
      sharedTablet = null;
      return id;
    }
    return (sharedTablet = `device-${v}`);
  };
}

function honestCrowd(rng: Rng, voters: number): SimEvent[] {
  const events: SimEvent[] = [];
  // IPs: half private, half NATs of 5–30.
  const ips: string[] = [];
  let ipSeq = 0;
  while (ips.length < voters) {
    if (rng.next() < 0.5) ips.push(`home-${(ipSeq += 1)}`);
    else {
      const nat = `nat-${(ipSeq += 1)}`;
      const size = rng.int(5, 30);
      for (let i = 0; i < size; i += 1) ips.push(nat);
    }
  }
  ips.length = voters;
  // Shuffle so NAT members arrive at different times.
  for (let i = ips.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rng.next() * (i + 1));
    [ips[i], ips[j]] = [ips[j]!, ips[i]!];
  }
  const device = deviceIds(rng);
  for (let v = 0; v < voters; v += 1) {
    const arrival = START + (rng.next() < 0.5 ? rng.uniform(0, 2 * MINUTE) : rng.uniform(0, WINDOW_MS));
    const createdAt = rng.next() < 0.3 ? START - rng.uniform(1, 60) * DAY : arrival;
    const user: SimUser = { id: `honest-${v}`, createdAt: Math.round(createdAt), ip: ips[v]!, deviceId: device(v) };
    const kind = voterKind(rng);
    for (const c of honestCasts(rng, kind, arrival + rng.lognormal(30 * SECOND, 0.9)))
      events.push({ ...c, user, group: `honest:${kind}` });
  }
  return events;
}

const VENUE_IP = 'venue-wifi';

function venueCrowd(rng: Rng, size: number): SimEvent[] {
  const events: SimEvent[] = [];
  const device = deviceIds(rng);
  for (let v = 0; v < size; v += 1) {
    const early = rng.next() < 0.6;
    const qrMinute = rng.next() < 0.5;
    const opened = early
      ? qrMinute
        ? START - 3 * MINUTE + rng.uniform(0, MINUTE)
        : START - 10 * MINUTE + rng.uniform(0, 10 * MINUTE)
      : START + rng.uniform(0, 10 * MINUTE);
    const createdAt = rng.next() < 0.2 ? START - rng.uniform(1, 60) * DAY : opened;
    // Ready to vote after looking; those ready before voting opens vote in the "vote now" rush.
    const ready = opened + rng.lognormal(25 * SECOND, 0.6);
    const first = ready >= START ? ready : START + rng.lognormal(15 * SECOND, 0.8);
    const user: SimUser = { id: `venue-${v}`, createdAt: Math.round(createdAt), ip: VENUE_IP, deviceId: device(v) };
    const kind = voterKind(rng);
    for (const c of honestCasts(rng, kind, first)) events.push({ ...c, user, group: `venue:${kind}` });
  }
  return events;
}

// ------------------------------------------------------------------------------ the attacks

const TARGET: FraudSubject = { kind: 'vote', competitionId: 'simple', submissionIds: ['simple-s7'] };

interface Attack {
  name: string;
  description: string;
  build(rng: Rng): SimEvent[];
}

/** Fresh accounts created 0.5–3 s before their single vote for TARGET; `where(i)` gives IP and device. */
function puppets(
  rng: Rng,
  name: string,
  count: number,
  meanGapMs: number,
  where: (i: number) => { ip: string; deviceId: string | null },
  begin = START + 3 * MINUTE,
): SimEvent[] {
  const events: SimEvent[] = [];
  let at = begin;
  for (let i = 0; i < count; i += 1) {
    at += rng.exponential(meanGapMs);
    const user: SimUser = { id: `${name}-${i}`, createdAt: Math.round(at - rng.uniform(0.5, 3) * SECOND), ...where(i) };
    events.push({ at: Math.round(at), user, subject: TARGET, group: name });
  }
  return events;
}

const ATTACKS: Attack[] = [
  {
    name: 'rapid-fire',
    description: 'one established account, 60 ballots 150–900 ms apart (random jitter), varied ballots',
    build(rng) {
      const user: SimUser = { id: 'rapid', createdAt: START - 10 * DAY, ip: 'rapid-ip', deviceId: 'rapid-device' };
      let at = START + 4 * MINUTE;
      return Array.from({ length: 60 }, () => {
        at += rng.uniform(150, 900);
        return { at: Math.round(at), user, subject: regularBallot(rng), group: 'rapid-fire' };
      });
    },
  },
  {
    name: 'puppets-ip+device',
    description:
      '200 fresh sock-puppet accounts, one IP and one device id, one vote each for the same submission (~1.5 s apart)',
    build: (rng) => puppets(rng, 'puppets-ip+device', 200, 1_500, () => ({ ip: 'farm-1', deviceId: 'farm-device' })),
  },
  {
    name: 'puppets-ip',
    description: '200 fresh sock-puppet accounts on one IP, a new device id each, same submission (~1.5 s apart)',
    build: (rng) => puppets(rng, 'puppets-ip', 200, 1_500, (i) => ({ ip: 'farm-2', deviceId: `rotating-${i}` })),
  },
  {
    name: 'bot-500ms',
    description: 'one established account voting every 500 ms (±5 ms network jitter), 40 ballots',
    build(rng) {
      const user: SimUser = { id: 'bot', createdAt: START - 5 * DAY, ip: 'bot-ip', deviceId: 'bot-device' };
      let at = START + 5 * MINUTE;
      return Array.from({ length: 40 }, () => {
        at += 500 + rng.uniform(-5, 5);
        return { at: Math.round(at), user, subject: regularBallot(rng), group: 'bot-500ms' };
      });
    },
  },
  {
    name: 'bulk-new-30/ip',
    description:
      '300 fresh accounts over 10 IPs (30 per IP, like a NAT), new device ids, same submission, within ~5 min',
    build: (rng) =>
      puppets(rng, 'bulk-new-30/ip', 300, 1_000, (i) => ({ ip: `proxy-${i % 10}`, deviceId: `bulk-${i}` })),
  },
  {
    name: 'new-accounts-bulk-voting',
    description: '50 fresh accounts, each on its own IP, each casting 8 ballots ~5 s apart right after sign-up',
    build(rng) {
      const events: SimEvent[] = [];
      for (let u = 0; u < 50; u += 1) {
        const first = START + 2 * MINUTE + rng.uniform(0, 3 * MINUTE);
        const user: SimUser = {
          id: `burst-${u}`,
          createdAt: Math.round(first - rng.uniform(1, 3) * SECOND),
          ip: `burst-ip-${u}`,
          deviceId: `burst-${u}`,
        };
        let at = first;
        for (let i = 0; i < 8; i += 1) {
          events.push({ at: Math.round(at), user, subject: regularBallot(rng), group: 'new-accounts-bulk-voting' });
          at += rng.lognormal(5 * SECOND, 0.5);
        }
      }
      return events;
    },
  },
  {
    name: 'distributed (limit)',
    description:
      '300 fresh accounts, each on its own residential-proxy IP and device, one vote each for the same submission',
    build: (rng) =>
      puppets(rng, 'distributed (limit)', 300, 1_000, (i) => ({ ip: `resi-${i}`, deviceId: `resi-${i}` })),
  },
];

/**
 * A burst of brand-new accounts on one IP: `size` tokens first seen within `spreadMs`, each
 * voting 0.1–1 s after its first sight (or 3–8 s when `patient`), a new device id each; all for
 * TARGET (`same`) or each a regular ballot (`spread`, the worst case for detection).
 */
interface BurstSpec {
  size: number;
  spreadMs: number;
  ballots: 'same' | 'spread';
  patient?: boolean;
}

const burstName = (b: BurstSpec, where = ''): string =>
  `${b.patient ? 'patient ' : ''}burst ${b.size} in ${b.spreadMs / SECOND} s, ${b.ballots === 'same' ? 'same submission' : 'spread ballots'}${where}`;

function burst(rng: Rng, b: BurstSpec, name: string, ip: string, begin: number): SimEvent[] {
  const sights = Array.from({ length: b.size }, () => begin + rng.uniform(0, b.spreadMs)).sort((x, y) => x - y);
  return sights.map((seen, i) => {
    const lag = b.patient ? rng.uniform(3 * SECOND, 8 * SECOND) : rng.uniform(100, SECOND);
    const user: SimUser = { id: `${name}-${i}`, createdAt: Math.round(seen), ip, deviceId: `${name}-device-${i}` };
    return {
      at: Math.round(seen + lag),
      user,
      subject: b.ballots === 'same' ? TARGET : regularBallot(rng),
      group: name,
    };
  });
}

const BURST_SIZES = [5, 10, 20, 50, 100];
const BURST_SPREADS_MS = [1, 5, 30].map((s) => s * SECOND);
const BALLOTS = ['same', 'spread'] as const;
const BURSTS: BurstSpec[] = BURST_SIZES.flatMap((size) =>
  BALLOTS.flatMap((ballots) => BURST_SPREADS_MS.map((spreadMs) => ({ size, spreadMs, ballots }))),
);
/** On the venue's IP, in its "vote now" rush (the venue of 300). */
const VENUE_BURSTS: BurstSpec[] = [10, 20, 50].flatMap((size) =>
  BALLOTS.map((ballots) => ({ size, spreadMs: 5 * SECOND, ballots })),
);
/** Scripts that wait a few seconds after first sight: what the quick-account count cannot see. */
const PATIENT_BURSTS: BurstSpec[] = [20, 50].flatMap((size) =>
  BALLOTS.map((ballots) => ({ size, spreadMs: 30 * SECOND, ballots, patient: true })),
);
const VENUE_SIZES = [100, 300, 1_000];

// ------------------------------------------------------------------------------ running

interface GroupResult {
  votes: number;
  flagged: number;
  blocked: number;
  /** Distinct users with at least one FLAG/BLOCK. */
  usersHit: number;
  users: number;
  /** 1-based index of the first FLAG/BLOCK among the group's votes; null if none. */
  firstDetection: number | null;
  rules: Partial<Record<FraudRule, number>>;
}

async function replay(
  events: SimEvent[],
  thresholds: { alert: number; block: number },
): Promise<Map<string, GroupResult>> {
  events.sort((a, b) => a.at - b.at);
  const createdAt = new Map<string, number>();
  for (const e of events) createdAt.set(e.user.id, e.user.createdAt);
  let id = 0;
  const engine = createFraudEngine({
    store: createMemoryFraudStore(),
    thresholds,
    accountCreatedAt: async (userId) => createdAt.get(userId) ?? null,
    newId: () => String((id += 1)),
  });
  const results = new Map<string, GroupResult>();
  const hitUsers = new Map<string, Set<string>>();
  const allUsers = new Map<string, Set<string>>();
  for (const e of events) {
    const caller: Caller = {
      viewer: { id: e.user.id, name: e.user.id, role: 'AUDIENCE' },
      clientIp: e.user.ip,
      deviceId: e.user.deviceId,
    };
    const decision = (await engine.evaluate(e.subject, caller, e.at))!;
    let r = results.get(e.group);
    if (!r) {
      results.set(
        e.group,
        (r = { votes: 0, flagged: 0, blocked: 0, usersHit: 0, users: 0, firstDetection: null, rules: {} }),
      );
      hitUsers.set(e.group, new Set());
      allUsers.set(e.group, new Set());
    }
    r.votes += 1;
    allUsers.get(e.group)!.add(e.user.id);
    if (decision.verdict !== 'ALLOW') {
      if (decision.verdict === 'FLAG') r.flagged += 1;
      else r.blocked += 1;
      r.firstDetection ??= r.votes;
      hitUsers.get(e.group)!.add(e.user.id);
      for (const rule of decision.rules) r.rules[rule.rule] = (r.rules[rule.rule] ?? 0) + 1;
    }
  }
  for (const [group, r] of results) {
    r.usersHit = hitUsers.get(group)!.size;
    r.users = allUsers.get(group)!.size;
  }
  return results;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const pct = (n: number, d: number): string => (d === 0 ? '–' : `${((100 * n) / d).toFixed(2)} %`);
/** A fixed sub-seed per seed and label, so adding a scenario does not change the others' draws. */
const subSeed = (seed: number, label: string): number =>
  [...label].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, seed * 7919 + 2166136261);

interface Row {
  seed: number;
  scenario: string;
  group: string;
  result: GroupResult;
}

async function main(): Promise<void> {
  const seeds = arg('seeds', 5);
  const voters = arg('voters', 3_000);
  const thresholds = { alert: arg('alert', 70), block: arg('block', 80) };
  const json = process.argv.includes('--json');
  const started = Date.now();

  const rows: Row[] = [];
  const run = async (seed: number, scenario: string, events: SimEvent[]) => {
    for (const [group, result] of await replay(events, thresholds)) rows.push({ seed, scenario, group, result });
  };
  for (let seed = 1; seed <= seeds; seed += 1) {
    const crowd = honestCrowd(new Rng(mulberry32(seed)), voters);
    await run(seed, 'crowd', [...crowd]);
    for (const attack of ATTACKS)
      await run(seed, attack.name, [...crowd, ...attack.build(new Rng(mulberry32(subSeed(seed, attack.name))))]);
    // Bursts on their own IPs do not interact: one replay holds them all, in the crowd.
    const bursts = (specs: BurstSpec[]) =>
      specs.flatMap((b) =>
        burst(
          new Rng(mulberry32(subSeed(seed, burstName(b)))),
          b,
          burstName(b),
          `ip-${burstName(b)}`,
          START + 3 * MINUTE,
        ),
      );
    await run(seed, 'bursts', [...crowd, ...bursts(BURSTS), ...bursts(PATIENT_BURSTS)]);
    for (const size of VENUE_SIZES) {
      const venue = venueCrowd(new Rng(mulberry32(subSeed(seed, `venue ${size}`))), size);
      await run(seed, `venue ${size}`, venue);
      if (size !== 300) continue;
      for (const b of VENUE_BURSTS) {
        const name = burstName(b, ', on the venue IP');
        await run(seed, name, [
          ...venue,
          ...burst(new Rng(mulberry32(subSeed(seed, name))), b, name, VENUE_IP, START + 5 * SECOND),
        ]);
      }
    }
  }

  if (json) {
    console.log(JSON.stringify({ seeds, voters, thresholds, rows }, null, 2));
    return;
  }
  report(rows, { seeds, voters, thresholds });
  console.log(`\n(${rows.length} groups replayed in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

// ------------------------------------------------------------------------------ report

function sum(list: GroupResult[]) {
  return list.reduce(
    (a, r) => ({
      votes: a.votes + r.votes,
      flagged: a.flagged + r.flagged,
      blocked: a.blocked + r.blocked,
      usersHit: a.usersHit + r.usersHit,
      users: a.users + r.users,
    }),
    { votes: 0, flagged: 0, blocked: 0, usersHit: 0, users: 0 },
  );
}

const hitRate = (r: { votes: number; flagged: number; blocked: number }) =>
  r.votes === 0 ? 0 : (r.flagged + r.blocked) / r.votes;

function rulesOf(list: GroupResult[]): string {
  const total: Partial<Record<FraudRule, number>> = {};
  for (const r of list)
    for (const [rule, n] of Object.entries(r.rules)) total[rule as FraudRule] = (total[rule as FraudRule] ?? 0) + n;
  return (
    Object.entries(total)
      .sort((a, b) => b[1] - a[1])
      .map(([rule, n]) => `${rule} ${n}`)
      .join(', ') || '–'
  );
}

function report(rows: Row[], o: { seeds: number; voters: number; thresholds: { alert: number; block: number } }): void {
  const select = (scenario: (s: string) => boolean, group: (g: string) => boolean) =>
    rows.filter((r) => scenario(r.scenario) && group(r.group));
  /** Per seed, the group's results summed (for the worst seed). */
  const perSeed = (list: Row[]) =>
    [...new Set(list.map((r) => r.seed))].map((seed) => sum(list.filter((r) => r.seed === seed).map((r) => r.result)));

  console.log(
    `## Fraud simulation: ${o.voters} honest voters, ${o.seeds} seeds, thresholds FLAG ≥ ${o.thresholds.alert}, BLOCK ≥ ${o.thresholds.block}\n`,
  );
  console.log('### False positives (honest votes flagged or blocked)\n');
  console.log(
    '| honest traffic | voters | votes | flagged | blocked | FP rate (flag + block) | worst seed | voters hit | rules on the hits |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---|');
  const fpRow = (label: string, list: Row[]) => {
    const s = sum(list.map((r) => r.result));
    const worst = Math.max(0, ...perSeed(list).map(hitRate));
    console.log(
      `| ${label} | ${s.users} | ${s.votes} | ${s.flagged} | ${s.blocked} | ${pct(s.flagged + s.blocked, s.votes)} | ${(100 * worst).toFixed(2)} % | ${pct(s.usersHit, s.users)} | ${rulesOf(list.map((r) => r.result))} |`,
    );
  };
  const label = { regular: 'regular voters', allocator: 'QUADRATIC allocators', editor: 'editors (APPROVAL/RANKED)' };
  for (const kind of VOTER_KINDS)
    fpRow(
      `crowd: ${label[kind]}`,
      select(
        (s) => s === 'crowd',
        (g) => g === `honest:${kind}`,
      ),
    );
  fpRow(
    'crowd: everyone',
    select(
      (s) => s === 'crowd',
      (g) => g.startsWith('honest:'),
    ),
  );
  const withCrowd = [
    ...new Set(rows.filter((r) => r.scenario !== 'crowd' && r.group.startsWith('honest:')).map((r) => r.scenario)),
  ];
  const worstScenario = withCrowd
    .map(
      (s) =>
        [
          s,
          hitRate(
            sum(
              select(
                (x) => x === s,
                (g) => g.startsWith('honest:'),
              ).map((r) => r.result),
            ),
          ),
        ] as const,
    )
    .sort((a, b) => b[1] - a[1])[0];
  if (worstScenario)
    fpRow(
      `crowd during the attacks (worst of ${withCrowd.length} runs: ${worstScenario[0]})`,
      select(
        (s) => s === worstScenario[0],
        (g) => g.startsWith('honest:'),
      ),
    );
  for (const size of VENUE_SIZES)
    fpRow(
      `venue Wi-Fi, ${size.toLocaleString('en')} people on one IP`,
      select(
        (s) => s === `venue ${size}`,
        (g) => g.startsWith('venue:'),
      ),
    );
  for (const kind of VOTER_KINDS)
    fpRow(
      `venues: ${label[kind]}`,
      select(
        (s) => s.startsWith('venue '),
        (g) => g === `venue:${kind}`,
      ),
    );
  fpRow(
    `venue of 300 during the bursts on its IP (${VENUE_BURSTS.length} runs)`,
    select(
      (s) => s.endsWith('on the venue IP'),
      (g) => g.startsWith('venue:'),
    ),
  );

  const attackRow = (label: string, list: Row[]) => {
    const s = sum(list.map((r) => r.result));
    const firsts = list.map((r) => r.result.firstDetection).filter((x): x is number => x !== null);
    const first = firsts.length === 0 ? 'never' : `${Math.min(...firsts)}–${Math.max(...firsts)}`;
    console.log(
      `| ${label} | ${s.votes} | ${pct(s.flagged + s.blocked, s.votes)} | ${pct(s.blocked, s.votes)} | ${firsts.length}/${list.length} | ${first} | ${rulesOf(list.map((r) => r.result))} |`,
    );
  };
  const attackHeader = (what: string) => {
    console.log(
      `| ${what} | votes | detected (flag + block) | blocked | runs with an alert | first alert at vote # | rules |`,
    );
    console.log('|---|---:|---:|---:|---:|---:|---|');
  };
  console.log('\n### Detection (attack votes flagged or blocked)\n');
  attackHeader('attack (mixed into the crowd)');
  for (const attack of ATTACKS)
    attackRow(
      `${attack.name}: ${attack.description}`,
      select(
        (s) => s === attack.name,
        (g) => g === attack.name,
      ),
    );

  console.log(
    '\n### Bursts of brand-new accounts on one IP, each voting 0.1–1 s after first sight (a new device id each)\n',
  );
  console.log('detected (flag + block) / blocked, runs with an alert\n');
  console.log(
    `| accounts | ballots | ${BURST_SPREADS_MS.map((ms) => `first seen within ${ms / SECOND} s`).join(' | ')} |`,
  );
  console.log(`|---:|---|${BURST_SPREADS_MS.map(() => '---:').join('|')}|`);
  for (const size of BURST_SIZES) {
    for (const ballots of BALLOTS) {
      const cells = BURST_SPREADS_MS.map((spreadMs) => {
        const name = burstName({ size, spreadMs, ballots });
        const list = select(
          (s) => s === 'bursts',
          (g) => g === name,
        );
        const s = sum(list.map((r) => r.result));
        const alerted = list.filter((r) => r.result.firstDetection !== null).length;
        return `${pct(s.flagged + s.blocked, s.votes)} / ${pct(s.blocked, s.votes)}, ${alerted}/${list.length}`;
      });
      console.log(`| ${size} | ${ballots === 'same' ? 'same submission' : 'spread'} | ${cells.join(' | ')} |`);
    }
  }
  console.log('');
  attackHeader('burst');
  for (const b of VENUE_BURSTS) {
    const name = burstName(b, ', on the venue IP');
    attackRow(
      `${name} (300 people)`,
      select(
        (s) => s === name,
        (g) => g === name,
      ),
    );
  }
  for (const b of PATIENT_BURSTS)
    attackRow(
      `${burstName(b)} (limit: 3–8 s after first sight)`,
      select(
        (s) => s === 'bursts',
        (g) => g === burstName(b),
      ),
    );
}

await main();
