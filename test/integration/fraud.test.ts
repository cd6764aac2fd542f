/**
 * Fraud detection through the real stack, on every backend (a Redis Cluster too):
 * - both state stores count identically (the same hand-computed windows on a fake clock), and
 *   two Redis stores on one Redis see each other's traffic;
 * - FLAG counts the vote and raises an alert that fraudAlerts and fraudAlertRaised show;
 *   BLOCK answers FRAUD_BLOCKED and counts nothing (BallotEntry unchanged); reactions too;
 * - a QUADRATIC voter stepping an allocation is never flagged; a burst of brand-new accounts on
 *   one IP voting within a second of first sight is flagged (and counted), the venue crowd around
 *   it is not;
 * - two app instances on one Redis see each other's traffic (DUPLICATE_BALLOT and SHARED_IP across
 *   instances);
 * - FRAUD_DETECTION_ENABLED=false checks nothing; the admin fields refuse everyone else.
 * Fraud detection is off in the generic test environment (test/support/app.ts); every app here
 * turns it on. Client IPs come from X-Forwarded-For (TRUST_PROXY=true), device ids from x-device-id.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FraudObservation, FraudStateStore, ObservedCounts } from '../../src/guards/fraud/fraud.store.js';
import { createMemoryFraudStore } from '../../src/guards/fraud/fraud.store.memory.js';
import { createRedisFraudStore } from '../../src/guards/fraud/fraud.store.redis.js';
import {
  CastVoteDocument,
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  FraudAlertRaisedDocument,
  FraudAlertsDocument,
  type FraudAlertRaisedSubscription,
  type FraudAlertRaisedSubscriptionVariables,
  FraudStatsDocument,
  MeDocument,
  OpenCompetitionDocument,
  SendReactionDocument,
} from '../generated/graphql.js';
import { startTestApp, useTestApp, type TestApp } from '../support/app.js';
import { withCluster } from '../support/backends.js';
import { subscribe } from '../support/clients.js';
import { codesOf, dataOf, execute, tokenFor, type Fetch } from '../support/graphql.js';
import { startRedis, type RedisServer } from '../support/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const FRAUD_ON = { FRAUD_DETECTION_ENABLED: 'true', TRUST_PROXY: 'true' };

/** fetch as a client at `ip` with device id `deviceId`. */
const from =
  (ip: string, deviceId?: string): Fetch =>
  (input, init) =>
    fetch(input, {
      ...init,
      headers: {
        ...(init?.headers as Record<string, string>),
        'x-forwarded-for': ip,
        ...(deviceId && { 'x-device-id': deviceId }),
      },
    });

// ------------------------------------------------------------------------------ the stores

describe.each([
  { name: 'memory', redis: false },
  { name: 'Redis', redis: true },
])('fraud state store: $name', ({ redis: onRedis }) => {
  let server: RedisServer | undefined;
  const clients: Redis[] = [];
  const stores: FraudStateStore[] = [];
  let prefix = 0;

  beforeAll(async () => {
    if (onRedis) server = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    for (const c of clients) c.disconnect();
    await server?.stop();
  });

  function newStore(): FraudStateStore {
    let store: FraudStateStore;
    if (server) {
      const client = new Redis(server.url);
      clients.push(client);
      store = createRedisFraudStore({ redis: client, flushMs: 50 });
    } else store = createMemoryFraudStore();
    stores.push(store);
    return store;
  }

  /** Observations in a fresh namespace (scopes and users unique per test). */
  function scenario() {
    prefix += 1;
    let id = 0;
    return (o: Partial<FraudObservation>): FraudObservation => ({
      kind: 'vote',
      at: 1_000_000,
      userId: 'u',
      scopeId: `c${prefix}`,
      ip: '198.51.100.1',
      deviceId: null,
      instantAccount: false,
      quickAccount: false,
      ballot: null,
      target: null,
      adjustable: false,
      ...o,
      id: `${prefix}-${(id += 1)}`,
      ...(o.userId && { userId: `${prefix}-${o.userId}` }),
    });
  }

  it('counts a user’s timeline in 10 s / 60 s / 10 min windows, boundaries included, with the latest times', async () => {
    const store = newStore();
    const obs = scenario();
    const base = 5_000_000;
    const results = [];
    for (const offset of [0, 50_000, 59_000, 60_000, 600_000, 600_001])
      results.push(await store.observe(obs({ userId: 'a', at: base + offset })));
    expect(results.map((r) => [r.userActions10s, r.userActions60s, r.userActions10m])).toEqual([
      [1, 1, 1],
      [1, 2, 2],
      [2, 3, 3],
      [3, 4, 4], // 50 000 is exactly 10 s before, 0 exactly 60 s before: both counted
      [1, 1, 5], // 0 is exactly 10 min before: still in
      [2, 2, 5], // now 0 is out
    ]);
    expect(results[5]!.recentTimes).toEqual([50_000, 59_000, 60_000, 600_000, 600_001].map((t) => base + t));
  });

  it('counts distinct accounts per IP, instant accounts, device and ballot within 5 minutes', async () => {
    const store = newStore();
    const obs = scenario();
    const at = 7_000_000;
    const r1 = await store.observe(
      obs({ userId: 'a', at, deviceId: 'd1', instantAccount: true, ballot: 'B1', target: 'B1' }),
    );
    const r2 = await store.observe(
      obs({ userId: 'b', at: at + 1, deviceId: 'd1', instantAccount: false, ballot: 'B1', target: 'B1' }),
    );
    const r3 = await store.observe(
      obs({ userId: 'a', at: at + 2, deviceId: 'd1', instantAccount: true, ballot: 'B1', target: 'B1' }),
    );
    const r4 = await store.observe(
      obs({ userId: 'c', at: at + 3, deviceId: 'd2', instantAccount: true, ballot: 'B2', target: 'B2' }),
    );
    // Other kind, other competition, other IP: separate windows.
    const other = await store.observe(
      obs({ userId: 'd', at: at + 4, kind: 'reaction', deviceId: 'd1', instantAccount: true }),
    );
    const r5 = await store.observe(obs({ userId: 'e', at: at + 300_002, deviceId: 'd1', ballot: 'B1', target: 'B1' }));
    expect(
      [r1, r2, r3, r4, other, r5].map((r) => [
        r.ipUsers,
        r.ipInstantUsers,
        r.deviceUsers,
        r.ballotRepeats,
        r.ipSameBallotUsers,
      ]),
    ).toEqual([
      [1, 1, 1, 1, 1],
      [2, 1, 2, 1, 2],
      [2, 1, 2, 2, 2], // a again: no new account; a's second B1
      [3, 2, 1, 1, 1],
      [1, 1, 1, null, null],
      // 300 002: b (at + 1) has left the 5-minute window; a (at + 2) is exactly on its edge and stays.
      [3, 2, 2, 1, 2],
    ]);
  });

  it('counts quick accounts per IP within 5 minutes', async () => {
    const store = newStore();
    const obs = scenario();
    const at = 13_000_000;
    const counts = [];
    for (const [userId, offset, quick] of [
      ['a', 0, true],
      ['b', 1, true],
      ['a', 2, true],
      ['c', 3, false],
      ['d', 300_002, false],
    ] as const) {
      counts.push(await store.observe(obs({ userId, at: at + offset, instantAccount: true, quickAccount: quick })));
    }
    // d at 300 002: b has left the window, a (at + 2) is on its edge and stays.
    expect(counts.map((r) => [r.ipUsers, r.ipInstantUsers, r.ipQuickUsers])).toEqual([
      [1, 1, 1],
      [2, 2, 2],
      [2, 2, 2],
      [3, 3, 2],
      [3, 3, 1],
    ]);
  });

  it('keeps QUADRATIC adjustments of a target out of the user timeline, and counts exact repeats', async () => {
    const store = newStore();
    const obs = scenario();
    const at = 15_000_000;
    const cast = (offset: number, target: string, votes: number) =>
      store.observe(obs({ userId: 'q', at: at + offset, target, ballot: `${target}#${votes}`, adjustable: true }));
    const results = [
      await cast(0, 'T1', 1),
      await cast(1_000, 'T1', 2), // adjustment
      await cast(2_000, 'T2', 1), // a new target: an action
      await cast(3_000, 'T1', 3),
      await cast(4_000, 'T1', 3), // adjustment and an exact repeat
      await cast(600_500, 'T1', 1), // T1's cast at 0 has left the 10-minute window, its adjustments have not
      await cast(1_300_000, 'T1', 2), // nothing within 10 min: an action again
    ];
    expect(
      results.map((r) => [r.adjustment, r.userActions10s, r.userActions10m, r.ballotRepeats, r.ipSameBallotUsers]),
    ).toEqual([
      [false, 1, 1, 1, 1],
      [true, 1, 1, 1, 1],
      [false, 2, 2, 1, 1],
      [true, 2, 2, 1, 1],
      [true, 2, 2, 2, 1],
      [true, 0, 1, 1, 1], // the timeline holds only T2's cast at 2 000
      [false, 1, 1, 1, 1],
    ]);
    expect(results[3]!.recentTimes).toEqual([at, at + 2_000]);
    // Without the adjustable flag (RANKED, APPROVAL, SIMPLE) every cast is an action.
    const plain = [];
    for (let i = 0; i < 3; i += 1)
      plain.push(await store.observe(obs({ userId: 'r', at: at + i, target: 'T1', ballot: 'T1' })));
    expect(plain.map((r) => [r.adjustment, r.userActions10s, r.ballotRepeats])).toEqual([
      [false, 1, 1],
      [false, 2, 2],
      [false, 3, 3],
    ]);
  });

  it('keeps at most 1,000 accounts per IP', async () => {
    const store = newStore();
    const obs = scenario();
    let last: ObservedCounts | undefined;
    for (let i = 0; i < 1_005; i += 1) last = await store.observe(obs({ userId: `x${i}`, at: 9_000_000 + i }));
    expect(last!.ipUsers).toBe(1_000);
  });

  it('claims a key once per ttl', async () => {
    const store = newStore();
    const key = `claim-${Math.random()}`;
    expect(await store.claim(key, 300, Date.now())).toBe(true);
    expect(await store.claim(key, 300, Date.now())).toBe(false);
    await sleep(350);
    expect(await store.claim(key, 300, Date.now())).toBe(true);
  });

  it.runIf(onRedis)('two stores on one Redis see each other’s traffic and decisions', async () => {
    const [a, b] = [newStore(), newStore()];
    const obs = scenario();
    await a.observe(obs({ userId: 'p', at: 11_000_000, deviceId: 'shared' }));
    const seen = await b.observe(obs({ userId: 'q', at: 11_000_001, deviceId: 'shared' }));
    expect([seen.ipUsers, seen.deviceUsers]).toEqual([2, 2]);
    a.countDecision('vote', 'scope-x', 'ALLOW');
    a.countDecision('vote', 'scope-x', 'BLOCK');
    b.countDecision('vote', 'scope-x', 'FLAG');
    // Both flush every 50 ms.
    await expect
      .poll(() => a.decisions('vote', ['scope-x']), { interval: 20 })
      .toEqual({ allowed: 1, flagged: 1, blocked: 1 });
    expect(await b.decisions('vote', ['scope-x'])).toEqual({ allowed: 1, flagged: 1, blocked: 1 });
  });
});

// ------------------------------------------------------------------------------ over HTTP

/** An app to send requests to: a started TestApp or a useTestApp fixture. */
type Served = Pick<TestApp, 'graphqlUrl'>;

describe.each(withCluster)('fraud checks on $name', (backend) => {
  const t = useTestApp(backend, FRAUD_ON);
  let admin: string;
  const gql = <R, V>(
    doc: Parameters<typeof execute<R, V>>[2],
    variables: V,
    token?: string,
    fetchFn: Fetch = fetch,
    app: Served = t,
  ) => execute(fetchFn, app.graphqlUrl, doc, variables, token);

  beforeAll(async () => {
    admin = await tokenFor({ sub: 'fraud-admin', name: 'Ada Admin', role: 'ADMIN' });
  });

  async function openCompetition(
    submissions: number,
    app: Served = t,
    method: { votingMethod: 'SIMPLE' | 'QUADRATIC'; creditsPerVoter?: number } = { votingMethod: 'SIMPLE' },
  ) {
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Fraud night', ...method } }, admin, fetch, app),
    );
    const ids: string[] = [];
    for (let i = 0; i < submissions; i += 1) {
      const { createSubmission } = dataOf(
        await gql(
          CreateSubmissionDocument,
          { input: { competitionId: createCompetition.id, title: `Startup ${i}` } },
          admin,
          fetch,
          app,
        ),
      );
      ids.push(createSubmission.id);
    }
    dataOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin, fetch, app));
    return { competitionId: createCompetition.id, submissionIds: ids };
  }

  type AlertFeed = ReturnType<typeof subscribe<FraudAlertRaisedSubscription, FraudAlertRaisedSubscriptionVariables>>;
  const isProbe = (r: AlertFeed['results'][number]) => r.data?.fraudAlertRaised.userId?.startsWith('probe-') === true;

  /**
   * The streams are live only (no snapshot): raise probe alerts in the competition until every
   * feed has received one, then delete the probes' rows so they do not show up anywhere else.
   */
  async function untilLive(feeds: AlertFeed[], competitionId: string): Promise<void> {
    const fraud = t.app.services.fraud;
    for (let i = 0; ; i += 1) {
      fraud.raise({
        userId: `probe-${i}`,
        competitionId,
        sessionId: null,
        rule: 'RAPID_VOTING',
        score: 1,
        action: 'FLAG',
        details: {},
      });
      await fraud.drain();
      const arrived = await Promise.all(
        feeds.map((f) =>
          f.waitFor(isProbe, 250).then(
            () => true,
            () => false,
          ),
        ),
      );
      if (arrived.every(Boolean)) break;
      if (i === 40) throw new Error('fraudAlertRaised streams did not go live');
    }
    await t.app.database.prisma.fraudAlert.deleteMany({ where: { userId: { startsWith: 'probe-' } } });
  }

  it('FLAG counts the vote and raises an alert; BLOCK refuses it and counts nothing', async () => {
    const { competitionId, submissionIds } = await openCompetition(6);
    const feed = subscribe('sse', t.url, FraudAlertRaisedDocument, { competitionId }, admin);
    const everything = subscribe('graphql-ws', t.url, FraudAlertRaisedDocument, {}, admin);
    try {
      await untilLive([feed, everything], competitionId);
      const tablet = from('203.0.113.10', 'shared-tablet');
      // Accounts opened an hour ago: only the shared device is remarkable.
      const ids = Array.from({ length: 6 }, (_, i) => `tablet-${backend.name}-${i}`);
      await t.app.database.prisma.user.createMany({
        data: ids.map((id) => ({ id, name: id, createdAt: new Date(Date.now() - 3600_000) })),
      });
      const voters = await Promise.all(ids.map((sub) => tokenFor({ sub })));
      const results = [];
      for (const [i, voter] of voters.entries()) {
        results.push(
          await gql(CastVoteDocument, { input: { competitionId, submissionId: submissionIds[i]! } }, voter, tablet),
        );
      }
      // Accounts on one device: 1, 2 → 0; 3 → 40; 4 → 60; 5 → 75 (FLAG); 6 → 85 (BLOCK).
      for (const r of results.slice(0, 5)) expect(r.errors).toBeUndefined();
      expect(codesOf(results[5]!)).toEqual(['FRAUD_BLOCKED']);
      expect(results[5]!.errors![0]!.extensions).toEqual({
        code: 'FRAUD_BLOCKED',
        retryable: false,
        reason: 'SUSPICIOUS_ACTIVITY',
      });

      const prisma = t.app.database.prisma;
      const entries = await prisma.ballotEntry.findMany({ where: { competitionId }, select: { voterId: true } });
      expect(entries.map((e: { voterId: string }) => e.voterId).sort()).toEqual(
        voters
          .slice(0, 5)
          .map((_, i) => `tablet-${backend.name}-${i}`)
          .sort(),
      );
      expect(await prisma.vote.count({ where: { competitionId, voterId: `tablet-${backend.name}-5` } })).toBe(0);

      await t.app.services.fraud.drain();
      const { fraudAlerts } = dataOf(await gql(FraudAlertsDocument, { competitionId }, admin));
      expect(fraudAlerts.map((a) => [a.userId, a.rule, a.score, a.action, a.competitionId])).toEqual([
        [`tablet-${backend.name}-5`, 'DUPLICATE_DEVICE', 85, 'BLOCK', competitionId],
        [`tablet-${backend.name}-4`, 'DUPLICATE_DEVICE', 75, 'FLAG', competitionId],
      ]);
      expect(fraudAlerts[1]!.details).toEqual({
        kind: 'vote',
        submissionIds: [submissionIds[4]],
        rules: [{ rule: 'DUPLICATE_DEVICE', score: 75, accounts5m: 5 }],
        ip: '203.0.113.10',
        deviceId: 'shared-tablet',
      });

      const real = () => feed.results.filter((r) => !isProbe(r));
      await feed.waitFor(() => real().length >= 2);
      expect(real().map((r) => r.errors)).toEqual([undefined, undefined]);
      expect(real().map((r) => r.data?.fraudAlertRaised.action)).toEqual(['FLAG', 'BLOCK']);
      expect(real().map((r) => r.data?.fraudAlertRaised.id)).toEqual(fraudAlerts.map((a) => a.id).reverse());
      await everything.waitFor((r) => r.data?.fraudAlertRaised.id === fraudAlerts[0]!.id);

      // Blocked again: counted as a decision, but no second alert for the same user, rule and action within a minute.
      expect(
        codesOf(
          await gql(CastVoteDocument, { input: { competitionId, submissionId: submissionIds[0]! } }, voters[5], tablet),
        ),
      ).toEqual(['FRAUD_BLOCKED']);
      await t.app.services.fraud.drain();
      expect(dataOf(await gql(FraudAlertsDocument, { competitionId }, admin)).fraudAlerts).toHaveLength(2);
      // Decision counters are shared through the store and flushed about once a second.
      const stats = async () => dataOf(await gql(FraudStatsDocument, { competitionId }, admin)).fraudStats;
      await expect
        .poll(async () => (await stats()).votes, { timeout: 10_000 })
        .toEqual({ allowed: 4, flagged: 1, blocked: 2 });
      expect(await stats()).toEqual({
        competitionId,
        votes: { allowed: 4, flagged: 1, blocked: 2 },
        reactions: { allowed: 0, flagged: 0, blocked: 0 },
        alerts: [
          { rule: 'DUPLICATE_DEVICE', action: 'BLOCK', alerts: 1 },
          { rule: 'DUPLICATE_DEVICE', action: 'FLAG', alerts: 1 },
        ],
        alertsDropped: 0,
      });
    } finally {
      await Promise.all([feed.close(), everything.close()]);
    }
  });

  it('lets a QUADRATIC voter step an allocation 1, 2, 3, 4, 5, 6 votes and on to the next submission', async () => {
    const { competitionId, submissionIds } = await openCompetition(3, t, {
      votingMethod: 'QUADRATIC',
      creditsPerVoter: 100,
    });
    const voter = await tokenFor({ sub: `allocator-${backend.name}` });
    const phone = from('192.0.2.50', 'allocator-phone');
    dataOf(await gql(MeDocument, {}, voter, phone)); // opens the app
    const steps: [number, number][] = [
      [0, 1],
      [0, 2],
      [0, 3],
      [0, 4],
      [0, 5],
      [0, 6],
      [1, 1],
      [1, 2],
      [1, 3],
      [0, 5],
    ];
    const remaining = [];
    for (const [submission, votes] of steps) {
      const result = await gql(
        CastVoteDocument,
        { input: { competitionId, submissionId: submissionIds[submission]!, votes } },
        voter,
        phone,
      );
      expect(result.errors).toBeUndefined();
      remaining.push(result.data!.castVote.creditsRemaining);
    }
    expect(remaining).toEqual([99, 96, 91, 84, 75, 64, 63, 60, 55, 66]);
    await t.app.services.fraud.drain();
    expect(dataOf(await gql(FraudAlertsDocument, { competitionId }, admin)).fraudAlerts).toEqual([]);
  });

  it('flags a burst of brand-new accounts voting within a second of first sight, not the venue crowd around it', async () => {
    const { competitionId, submissionIds } = await openCompetition(6);
    const wifi = (deviceId: string) => from('198.51.100.150', deviceId);
    // The venue: 30 people whose app opened minutes ago.
    const venue = Array.from({ length: 30 }, (_, i) => `venue-${backend.name}-${i}`);
    await t.app.database.prisma.user.createMany({
      data: venue.map((id) => ({ id, name: id, createdAt: new Date(Date.now() - 4 * 60_000) })),
    });
    // A script on the same Wi-Fi: 10 new tokens whose first request is the vote, among the venue's votes.
    const burst = Array.from({ length: 10 }, (_, i) => `burst-${backend.name}-${i}`);
    const order = venue.flatMap((id, i) => (i % 3 === 2 ? [id, burst[(i - 2) / 3]!] : [id]));
    for (const [i, id] of order.entries()) {
      const result = await gql(
        CastVoteDocument,
        { input: { competitionId, submissionId: submissionIds[i % 6]! } },
        await tokenFor({ sub: id }),
        wifi(`phone-${id}`),
      );
      expect(result.errors).toBeUndefined(); // FLAG counts
    }
    expect(await t.app.database.prisma.ballotEntry.count({ where: { competitionId } })).toBe(40);
    await t.app.services.fraud.drain();
    const { fraudAlerts } = dataOf(await gql(FraudAlertsDocument, { competitionId }, admin));
    // Quick accounts on the IP: 6 → 70 (FLAG). The venue's people are never quick.
    expect(fraudAlerts.map((a) => [a.userId, a.rule, a.action]).reverse()).toEqual(
      burst.slice(5).map((id) => [id, 'NEW_ACCOUNT_BULK', 'FLAG']),
    );
    expect((fraudAlerts[4]!.details as { rules: unknown[] }).rules).toEqual([
      expect.objectContaining({ rule: 'NEW_ACCOUNT_BULK', score: 70, quickAccountsOnIp5m: 6 }),
    ]);
  });

  it('checks reactions too: the alert carries the session and its competition', async () => {
    const prisma = t.app.database.prisma;
    const competition = await prisma.competition.create({
      data: { title: 'Live', votingMethod: 'SIMPLE', status: 'OPEN' },
    });
    const session = await prisma.eventSession.create({
      data: { competitionId: competition.id, status: 'LIVE', submissionIds: [], presentationSeconds: 60 },
    });
    const phone = from('203.0.113.20', 'one-phone');
    const codes = [];
    for (let i = 0; i < 6; i += 1) {
      const token = await tokenFor({ sub: `reactor-${backend.name}-${i}` });
      codes.push(
        codesOf(
          await gql(
            SendReactionDocument,
            { input: { sessionId: session.id, type: 'CLAP', intensity: 5 } },
            token,
            phone,
          ),
        ),
      );
    }
    expect(codes).toEqual([[], [], [], [], [], ['FRAUD_BLOCKED']]);
    await t.app.services.fraud.drain();
    const { fraudAlerts } = dataOf(await gql(FraudAlertsDocument, { competitionId: competition.id }, admin));
    expect(
      fraudAlerts.map((a) => [
        a.action,
        a.rule,
        a.competitionId,
        (a.details as { sessionId: string; kind: string }).sessionId,
      ]),
    ).toEqual([
      ['BLOCK', 'DUPLICATE_DEVICE', competition.id, session.id],
      ['FLAG', 'DUPLICATE_DEVICE', competition.id, session.id],
    ]);
    const { fraudStats } = dataOf(await gql(FraudStatsDocument, { competitionId: competition.id }, admin));
    expect(fraudStats.reactions).toEqual({ allowed: 4, flagged: 1, blocked: 1 });
  });

  it('is for admins only, and pages 1..100 newest first', async () => {
    const audience = await tokenFor({ sub: 'nosy' });
    expect(codesOf(await gql(FraudAlertsDocument, {}, audience))).toEqual(['FORBIDDEN']);
    expect(codesOf(await gql(FraudAlertsDocument, {}))).toEqual(['UNAUTHENTICATED']);
    expect(codesOf(await gql(FraudStatsDocument, {}, audience))).toEqual(['FORBIDDEN']);
    const denied = subscribe('sse', t.url, FraudAlertRaisedDocument, {}, audience);
    try {
      const result = await denied.waitFor((r) => r.errors !== undefined);
      expect(result.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
    } finally {
      await denied.close();
    }
    for (const first of [0, 101]) {
      const result = await gql(FraudAlertsDocument, { first }, admin);
      expect(codesOf(result)).toEqual(['BAD_USER_INPUT']);
      expect(result.errors?.[0]?.extensions?.['field']).toBe('first');
    }
    const all = dataOf(await gql(FraudAlertsDocument, {}, admin)).fraudAlerts;
    expect(all.length).toBeGreaterThanOrEqual(4); // the two tests above
    expect(all.map((a) => a.createdAt)).toEqual([...all.map((a) => a.createdAt)].sort().reverse());
    expect(dataOf(await gql(FraudAlertsDocument, { first: 1 }, admin)).fraudAlerts).toEqual(all.slice(0, 1));
  });

  it.runIf(backend.name.includes('Redis'))(
    'two instances on one Redis see each other’s traffic (DUPLICATE_BALLOT and SHARED_IP across instances)',
    async () => {
      // Every non-zero score alerts, nothing blocks.
      const env = { ...t.backendEnv, ...FRAUD_ON, FRAUD_ALERT_THRESHOLD: '1', FRAUD_BLOCK_THRESHOLD: '100' };
      const [a, b] = await Promise.all([startTestApp(env), startTestApp(env)]);
      try {
        const { competitionId, submissionIds } = await openCompetition(5, a);
        // Established accounts (no NEW_ACCOUNT_BULK), each with its own device, all for one
        // submission: DUPLICATE_BALLOT's crowd counts from the 8th account, SHARED_IP from the 26th.
        const users = Array.from({ length: 30 }, (_, i) => `office-${i}`);
        await a.app.database.prisma.user.createMany({
          data: users.map((id) => ({ id, name: id, createdAt: new Date(Date.now() - 3600_000) })),
        });
        for (const [i, id] of users.entries()) {
          const app = i % 2 === 0 ? a : b;
          const result = await gql(
            CastVoteDocument,
            { input: { competitionId, submissionId: submissionIds[0]! } },
            await tokenFor({ sub: id }),
            from('198.51.100.77', `phone-${i}`),
            app,
          );
          expect(result.errors).toBeUndefined();
        }
        await Promise.all([a.app.services.fraud.drain(), b.app.services.fraud.drain()]);
        const { fraudAlerts } = dataOf(await gql(FraudAlertsDocument, { competitionId }, admin, fetch, b));
        interface Rules {
          rules: { rule: string; sameBallotAccountsOnIp5m?: number; accounts5m?: number }[];
        }
        const counted = (alert: (typeof fraudAlerts)[number], rule: string) => {
          const found = (alert.details as Rules).rules.find((r) => r.rule === rule);
          return found ? (found.sameBallotAccountsOnIp5m ?? found.accounts5m) : null;
        };
        // Each instance served 15 accounts: only the shared windows reach 16–30.
        const seen = fraudAlerts.map(
          (x) => [x.userId, x.rule, x.action, counted(x, 'DUPLICATE_BALLOT'), counted(x, 'SHARED_IP')] as const,
        );
        expect([...seen].sort((x, y) => x[3]! - y[3]!)).toEqual(
          Array.from({ length: 23 }, (_, k) => k + 7).map((i) => [
            `office-${i}`,
            'DUPLICATE_BALLOT',
            'FLAG',
            i + 1,
            i >= 25 ? i + 1 : null,
          ]),
        );
        // Decision counters flush every second: the stats show every decision by the next flush.
        await expect
          .poll(
            async () => dataOf(await gql(FraudStatsDocument, { competitionId }, admin, fetch, a)).fraudStats.votes,
            {
              timeout: 5_000,
              interval: 100,
            },
          )
          .toEqual({ allowed: 7, flagged: 23, blocked: 0 });
      } finally {
        await Promise.all([a.stop(), b.stop()]);
      }
    },
  );
});

describe('FRAUD_DETECTION_ENABLED=false', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ FRAUD_DETECTION_ENABLED: 'false', TRUST_PROXY: 'true' }, { postgres: true });
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('checks nothing: ten accounts on one device all vote, no alert, no decision counted', async () => {
    const admin = await tokenFor({ sub: 'admin', role: 'ADMIN' });
    const gql = <R, V>(
      doc: Parameters<typeof execute<R, V>>[2],
      variables: V,
      token?: string,
      fetchFn: Fetch = fetch,
    ) => execute(fetchFn, t.graphqlUrl, doc, variables, token);
    const { createCompetition } = dataOf(
      await gql(CreateCompetitionDocument, { input: { title: 'Off', votingMethod: 'SIMPLE' } }, admin),
    );
    const { createSubmission } = dataOf(
      await gql(CreateSubmissionDocument, { input: { competitionId: createCompetition.id, title: 'One' } }, admin),
    );
    dataOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin));
    for (let i = 0; i < 10; i += 1) {
      const token = await tokenFor({ sub: `off-${i}` });
      dataOf(
        await gql(
          CastVoteDocument,
          { input: { competitionId: createCompetition.id, submissionId: createSubmission.id } },
          token,
          from('203.0.113.30', 'kiosk'),
        ),
      );
    }
    expect(await t.app.database.prisma.ballotEntry.count({ where: { competitionId: createCompetition.id } })).toBe(10);
    await t.app.services.fraud.drain();
    expect(dataOf(await gql(FraudAlertsDocument, {}, admin)).fraudAlerts).toEqual([]);
    expect(dataOf(await gql(FraudStatsDocument, {}, admin)).fraudStats.votes).toEqual({
      allowed: 0,
      flagged: 0,
      blocked: 0,
    });
  });
});
