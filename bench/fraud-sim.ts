/**
 * Fraud detection on a simulated event: an honest crowd (false positives) and attacks
 * (detection), replayed through the real scoring (src/guards/fraud/fraud.rules.ts), engine and
 * memory state store with a simulated clock: fast, deterministic for a seed, no server.
 *
 *   npx tsx bench/fraud-sim.ts                  # 5 seeds, markdown tables (FRAUD.md)
 *   npx tsx bench/fraud-sim.ts --seeds 1 --json # raw numbers
 *   npx tsx bench/fraud-sim.ts --alert 60 --block 75
 *
 * The honest crowd: 3,000 voters over a 15-minute voting window. Half arrive in the first two
 * minutes (the "vote now" rush), the rest uniformly; 30 % have accounts from earlier days, the
 * others are created when they arrive (users are created on first sight of a token). First vote
 * after a lognormal delay (median 30 s); 1–3 votes (50/30/20 %), later ones lognormal 20 s apart;
 * 5 % are "tweakers" who cast 5–8 ballots a few seconds apart (quadratic and approval edits).
 * Half have their own IP, half sit behind NATs of 5–30 people; device ids are distinct, 10 % send
 * none, 3 % share a tablet with one other voter. Three competitions: SIMPLE over 8 submissions
 * (Zipf popularity), APPROVAL over 6, RANKED over 4. Rate limits are not simulated (they run
 * before the fraud stage and would only stop the fastest attacks earlier).
 */
import { createFraudEngine, type FraudDecision } from '../src/guards/fraud/fraud.engine.js';
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

function honestBallot(rng: Rng): FraudSubject {
  const which = rng.int(0, 2);
  if (which === 0) return { kind: 'vote', competitionId: 'simple', submissionIds: [rng.pick(SIMPLE, SIMPLE_WEIGHTS)] };
  if (which === 1) {
    const chosen = APPROVAL.filter((_, i) => rng.next() < APPROVAL_P[i]!);
    return { kind: 'vote', competitionId: 'approval', submissionIds: chosen.length > 0 ? chosen : [rng.pick(APPROVAL)] };
  }
  // Plackett–Luce: draw without replacement by popularity.
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
  /** 'honest' or the attack's name. */
  group: string;
}

interface Crowd {
  users: SimUser[];
  events: SimEvent[];
}

function honestCrowd(rng: Rng, opts: { voters: number; venue?: number }): Crowd {
  const users: SimUser[] = [];
  const events: SimEvent[] = [];
  // IPs: half private, half NATs of 5–30; an optional venue Wi-Fi with `venue` voters on one IP.
  const ips: string[] = [];
  let ipSeq = 0;
  const venue = opts.venue ?? 0;
  for (let i = 0; i < venue; i += 1) ips.push('venue-wifi');
  while (ips.length < opts.voters) {
    if (rng.next() < 0.5) ips.push(`home-${(ipSeq += 1)}`);
    else {
      const nat = `nat-${(ipSeq += 1)}`;
      const size = rng.int(5, 30);
      for (let i = 0; i < size; i += 1) ips.push(nat);
    }
  }
  ips.length = opts.voters;
  // Shuffle so NAT members arrive at different times.
  for (let i = ips.length - 1; i > 0; i -= 1) {
    const j = Math.floor(rng.next() * (i + 1));
    [ips[i], ips[j]] = [ips[j]!, ips[i]!];
  }
  let sharedTablet: string | null = null;
  for (let v = 0; v < opts.voters; v += 1) {
    const arrival = START + (rng.next() < 0.5 ? rng.uniform(0, 2 * MINUTE) : rng.uniform(0, WINDOW_MS));
    const createdAt = rng.next() < 0.3 ? START - rng.uniform(1, 60) * DAY : arrival;
    let deviceId: string | null = `device-${v}`;
    const d = rng.next();
    if (d < 0.1) deviceId = null;
    else if (d < 0.13) {
      // Two voters on one tablet: the second of a pair takes the first one's device.
      if (sharedTablet) {
        deviceId = sharedTablet;
        sharedTablet = null;
      } else sharedTablet = deviceId;
    }
    const user: SimUser = { id: `honest-${v}`, createdAt, ip: ips[v]!, deviceId };
    users.push(user);
    const tweaker = rng.next() < 0.05;
    const votes = tweaker ? rng.int(5, 8) : rng.pick([1, 2, 3], [50, 30, 20]);
    let at = arrival + rng.lognormal(30 * SECOND, 0.9);
    for (let i = 0; i < votes; i += 1) {
      events.push({ at: Math.round(at), user, subject: honestBallot(rng), group: 'honest' });
      at += tweaker ? rng.lognormal(4 * SECOND, 0.7) : rng.lognormal(20 * SECOND, 1);
    }
  }
  return { users, events };
}

// ------------------------------------------------------------------------------ the attacks

const TARGET: FraudSubject = { kind: 'vote', competitionId: 'simple', submissionIds: ['simple-s7'] };

interface Attack {
  name: string;
  description: string;
  build(rng: Rng): SimEvent[];
}

/** Fresh accounts created `lead` before their single vote for TARGET; `where(i)` gives IP and device. */
function puppets(rng: Rng, name: string, count: number, meanGapMs: number, where: (i: number) => { ip: string; deviceId: string | null }, begin = START + 3 * MINUTE): SimEvent[] {
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
        return { at: Math.round(at), user, subject: honestBallot(rng), group: 'rapid-fire' };
      });
    },
  },
  {
    name: 'puppets-ip+device',
    description: '200 fresh sock-puppet accounts, one IP and one device id, one vote each for the same submission (~1.5 s apart)',
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
        return { at: Math.round(at), user, subject: honestBallot(rng), group: 'bot-500ms' };
      });
    },
  },
  {
    name: 'bulk-new-30/ip',
    description: '300 fresh accounts over 10 IPs (30 per IP, like a NAT), new device ids, same submission, within ~5 min',
    build: (rng) => puppets(rng, 'bulk-new-30/ip', 300, 1_000, (i) => ({ ip: `proxy-${i % 10}`, deviceId: `bulk-${i}` })),
  },
  {
    name: 'new-accounts-bulk-voting',
    description: '50 fresh accounts, each on its own IP, each casting 8 ballots ~5 s apart right after sign-up',
    build(rng) {
      const events: SimEvent[] = [];
      for (let u = 0; u < 50; u += 1) {
        const first = START + 2 * MINUTE + rng.uniform(0, 3 * MINUTE);
        const user: SimUser = { id: `burst-${u}`, createdAt: Math.round(first - rng.uniform(1, 3) * SECOND), ip: `burst-ip-${u}`, deviceId: `burst-${u}` };
        let at = first;
        for (let i = 0; i < 8; i += 1) {
          events.push({ at: Math.round(at), user, subject: honestBallot(rng), group: 'new-accounts-bulk-voting' });
          at += rng.lognormal(5 * SECOND, 0.5);
        }
      }
      return events;
    },
  },
  {
    name: 'distributed (limit)',
    description: '300 fresh accounts, each on its own residential-proxy IP and device, one vote each for the same submission',
    build: (rng) => puppets(rng, 'distributed (limit)', 300, 1_000, (i) => ({ ip: `resi-${i}`, deviceId: `resi-${i}` })),
  },
];

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

async function replay(events: SimEvent[], thresholds: { alert: number; block: number }): Promise<Map<string, GroupResult>> {
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
    const caller: Caller = { viewer: { id: e.user.id, name: e.user.id, role: 'AUDIENCE' }, clientIp: e.user.ip, deviceId: e.user.deviceId };
    const decision = (await engine.evaluate(e.subject, caller, e.at)) as FraudDecision;
    let r = results.get(e.group);
    if (!r) {
      results.set(e.group, (r = { votes: 0, flagged: 0, blocked: 0, usersHit: 0, users: 0, firstDetection: null, rules: {} }));
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

async function main(): Promise<void> {
  const seeds = arg('seeds', 5);
  const voters = arg('voters', 3_000);
  const thresholds = { alert: arg('alert', 70), block: arg('block', 80) };
  const json = process.argv.includes('--json');
  const started = Date.now();

  type Row = { seed: number; scenario: string; group: string; result: GroupResult };
  const rows: Row[] = [];
  for (let seed = 1; seed <= seeds; seed += 1) {
    const crowd = honestCrowd(new Rng(mulberry32(seed)), { voters });
    rows.push(...[...(await replay([...crowd.events], thresholds))].map(([group, result]) => ({ seed, scenario: 'honest only', group, result })));
    const venue = honestCrowd(new Rng(mulberry32(seed)), { voters, venue: 300 });
    const venueEvents = venue.events.map((e) => (e.user.ip === 'venue-wifi' ? { ...e, group: 'venue' } : e));
    rows.push(...[...(await replay(venueEvents, thresholds))].map(([group, result]) => ({ seed, scenario: 'venue', group, result })));
    for (const attack of ATTACKS) {
      const events = [...crowd.events, ...attack.build(new Rng(mulberry32(seed * 7919 + attack.name.length)))];
      rows.push(...[...(await replay(events, thresholds))].map(([group, result]) => ({ seed, scenario: attack.name, group, result })));
    }
  }

  if (json) {
    console.log(JSON.stringify({ seeds, voters, thresholds, rows }, null, 2));
    return;
  }

  const sum = (list: GroupResult[]) =>
    list.reduce(
      (a, r) => ({ votes: a.votes + r.votes, flagged: a.flagged + r.flagged, blocked: a.blocked + r.blocked, usersHit: a.usersHit + r.usersHit, users: a.users + r.users }),
      { votes: 0, flagged: 0, blocked: 0, usersHit: 0, users: 0 },
    );
  const worst = (list: GroupResult[]) => Math.max(...list.map((r) => (r.flagged + r.blocked) / r.votes));
  const rulesOf = (list: GroupResult[]) => {
    const total: Partial<Record<FraudRule, number>> = {};
    for (const r of list) for (const [rule, n] of Object.entries(r.rules)) total[rule as FraudRule] = (total[rule as FraudRule] ?? 0) + n;
    return Object.entries(total)
      .sort((a, b) => b[1] - a[1])
      .map(([rule, n]) => `${rule} ${n}`)
      .join(', ');
  };

  console.log(`## Fraud simulation: ${voters} honest voters, ${seeds} seeds, thresholds FLAG ≥ ${thresholds.alert}, BLOCK ≥ ${thresholds.block}\n`);
  console.log('### False positives (honest votes flagged or blocked)\n');
  console.log('| scenario | honest votes | flagged | blocked | FP rate (flag + block) | worst seed | voters hit | rules on the hits |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---|');
  for (const scenario of ['honest only', 'venue', ...ATTACKS.map((a) => a.name)]) {
    const list = rows.filter((r) => r.scenario === scenario && r.group === 'honest').map((r) => r.result);
    const s = sum(list);
    const label = scenario === 'honest only' ? 'honest crowd alone' : scenario === 'venue' ? 'crowd incl. 300 on one venue IP: the others' : `during ${scenario}`;
    console.log(`| ${label} | ${s.votes} | ${s.flagged} | ${s.blocked} | ${pct(s.flagged + s.blocked, s.votes)} | ${(100 * worst(list)).toFixed(2)} % | ${pct(s.usersHit, s.users)} | ${rulesOf(list) || '–'} |`);
  }
  const venue = rows.filter((r) => r.scenario === 'venue' && r.group === 'venue').map((r) => r.result);
  const v = sum(venue);
  console.log(`| the 300 on the venue IP | ${v.votes} | ${v.flagged} | ${v.blocked} | ${pct(v.flagged + v.blocked, v.votes)} | ${(100 * worst(venue)).toFixed(2)} % | ${pct(v.usersHit, v.users)} | ${rulesOf(venue) || '–'} |`);

  console.log('\n### Detection (attack votes flagged or blocked)\n');
  console.log('| attack | votes | detected (flag + block) | blocked | counted anyway (allow + flag) | first detection at vote # (min–max) | rules |');
  console.log('|---|---:|---:|---:|---:|---:|---|');
  for (const attack of ATTACKS) {
    const list = rows.filter((r) => r.scenario === attack.name && r.group === attack.name).map((r) => r.result);
    const s = sum(list);
    const firsts = list.map((r) => r.firstDetection).filter((x): x is number => x !== null);
    const first = firsts.length === 0 ? 'never' : `${Math.min(...firsts)}–${Math.max(...firsts)}`;
    console.log(`| ${attack.name}: ${attack.description} | ${s.votes} | ${pct(s.flagged + s.blocked, s.votes)} | ${pct(s.blocked, s.votes)} | ${pct(s.votes - s.blocked, s.votes)} | ${first} | ${rulesOf(list)} |`);
  }
  console.log(`\n(${rows.length} groups replayed in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

await main();
