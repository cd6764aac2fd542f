/**
 * Fraud detection end to end, through the real server process (src/main.ts) with its defaults
 * (FRAUD_ALERT_THRESHOLD 70, FRAUD_BLOCK_THRESHOLD 80): a small honest crowd behind realistic NATs,
 * one of them stepping a QUADRATIC allocation, is never flagged; 25 sock puppets on one device are
 * stopped from the 5th, a burst of new accounts voting at first sight is flagged from the 6th, and
 * a bot voting every 500 ms is blocked within a few ballots. The large, simulated-clock version of this is
 * bench/fraud-sim.ts (FRAUD.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  CreateCompetitionDocument,
  CreateSubmissionDocument,
  FraudAlertsDocument,
  FraudStatsDocument,
  LeaderboardDocument,
  MeDocument,
  OpenCompetitionDocument,
  type CastVoteInput,
} from '../generated/graphql.js';
import { codesOf, dataOf, execute, tokenFor, type Fetch } from '../support/graphql.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const from =
  (ip: string, deviceId: string | null): Fetch =>
  (input, init) =>
    fetch(input, {
      ...init,
      headers: {
        ...(init?.headers as Record<string, string>),
        'x-forwarded-for': ip,
        ...(deviceId && { 'x-device-id': deviceId }),
      },
    });

/** Deterministic randomness for the crowd. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

describe('fraud detection through the real server', () => {
  let server: ServerProcess;
  let admin: string;
  const gql = <R, V>(doc: Parameters<typeof execute<R, V>>[2], variables: V, token?: string, fetchFn: Fetch = fetch) =>
    execute(fetchFn, server.graphqlUrl, doc, variables, token);

  beforeAll(async () => {
    // A movable clock (test/support/process-clock.ts): the crowd's accounts age 10 s in one step.
    server = await startServerProcess({ FRAUD_DETECTION_ENABLED: 'true', TRUST_PROXY: 'true' }, { movableClock: true });
    admin = await tokenFor({ sub: 'fraud-e2e-admin', role: 'ADMIN' });
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function competition(votingMethod: 'SIMPLE' | 'APPROVAL' | 'QUADRATIC', submissions: number) {
    const credits = votingMethod === 'QUADRATIC' ? { creditsPerVoter: 50 } : {};
    const { createCompetition } = dataOf(
      await gql(
        CreateCompetitionDocument,
        { input: { title: `Fraud ${votingMethod}`, votingMethod, ...credits } },
        admin,
      ),
    );
    const ids: string[] = [];
    for (let i = 0; i < submissions; i += 1) {
      ids.push(
        dataOf(
          await gql(
            CreateSubmissionDocument,
            { input: { competitionId: createCompetition.id, title: `S${i}` } },
            admin,
          ),
        ).createSubmission.id,
      );
    }
    dataOf(await gql(OpenCompetitionDocument, { id: createCompetition.id }, admin));
    return { competitionId: createCompetition.id, submissionIds: ids };
  }

  it('lets an honest crowd through and stops sock puppets and a metronomic bot', async () => {
    const simple = await competition('SIMPLE', 6);
    const approval = await competition('APPROVAL', 5);
    const quadratic = await competition('QUADRATIC', 3);
    const random = rng(42);

    // 150 voters: 50 on their own IP, the rest behind NATs of 10, 10, 10, 10, 15, 15 and 30;
    // distinct device ids, every tenth without one.
    const natSizes = [10, 10, 10, 10, 15, 15, 30];
    const ips: string[] = Array.from({ length: 50 }, (_, i) => `192.0.2.${i + 1}`);
    natSizes.forEach((size, n) => ips.push(...Array<string>(size).fill(`198.51.100.${n + 1}`)));
    const voters = ips.map((ip, i) => ({ sub: `crowd-${i}`, ip, deviceId: i % 10 === 9 ? null : `phone-${i}` }));
    const tokens = new Map(
      await Promise.all(voters.map(async (v) => [v.sub, await tokenFor({ sub: v.sub })] as const)),
    );
    const bot = await tokenFor({ sub: 'metronome' });

    // People open the app, look around, then vote: accounts exist > 10 s before their first ballot.
    // The server's clock moves those 10.5 s forward at once (what it sees is what waiting would
    // show: every account created before the step is 10.5 s older at its first ballot).
    await pool([...voters, { sub: 'metronome', ip: '203.0.113.99', deviceId: 'bot-phone' }], 10, async (v) => {
      dataOf(await gql(MeDocument, {}, tokens.get(v.sub) ?? bot, from(v.ip, v.deviceId)));
    });
    await server.advanceClock(10_500);

    const weights = [6, 5, 4, 3, 2, 1];
    const pick = () => {
      let r = random() * 21;
      for (let i = 0; i < 6; i += 1) if ((r -= weights[i]!) <= 0) return simple.submissionIds[i]!;
      return simple.submissionIds[5]!;
    };
    const ballots = voters.flatMap((v) => {
      const list: { v: (typeof voters)[number]; input: CastVoteInput }[] = [
        { v, input: { competitionId: simple.competitionId, submissionId: pick() } },
      ];
      if (random() < 0.3) {
        const set = approval.submissionIds.filter(() => random() < 0.4);
        list.push({
          v,
          input: {
            competitionId: approval.competitionId,
            approvals: set.length > 0 ? set : [approval.submissionIds[0]!],
          },
        });
      }
      return list;
    });
    const honestErrors: unknown[] = [];
    await pool(
      ballots.sort(() => random() - 0.5),
      8,
      async ({ v, input }) => {
        await sleep(random() * 100);
        const result = await gql(CastVoteDocument, { input }, tokens.get(v.sub), from(v.ip, v.deviceId));
        if (result.errors) honestErrors.push(...codesOf(result));
      },
    );
    expect(honestErrors).toEqual([]);

    // A QUADRATIC voter of the crowd using the +/− buttons: 1…5 votes on one submission, then
    // 1…3 on another, one castVote per step.
    const allocator = voters[3]!;
    for (const [submission, votes] of [
      [0, 1],
      [0, 2],
      [0, 3],
      [0, 4],
      [0, 5],
      [1, 1],
      [1, 2],
      [1, 3],
    ] as const) {
      const input = {
        competitionId: quadratic.competitionId,
        submissionId: quadratic.submissionIds[submission]!,
        votes,
      };
      expect(
        codesOf(
          await gql(CastVoteDocument, { input }, tokens.get(allocator.sub), from(allocator.ip, allocator.deviceId)),
        ),
      ).toEqual([]);
    }

    // 25 fresh sock puppets on one IP and one device, all for the least popular submission.
    const target = simple.submissionIds[5]!;
    const votesFor = async () =>
      dataOf(await gql(LeaderboardDocument, { competitionId: simple.competitionId })).leaderboard.find(
        (e) => e.submissionId === target,
      )!.votes;
    const before = await votesFor();
    const farm = from('203.0.113.66', 'farm-phone');
    const puppetCodes: unknown[][] = [];
    for (let i = 0; i < 25; i += 1) {
      const result = await gql(
        CastVoteDocument,
        { input: { competitionId: simple.competitionId, submissionId: target } },
        await tokenFor({ sub: `puppet-${i}` }),
        farm,
      );
      puppetCodes.push(codesOf(result));
    }
    // Accounts on the device: 3 → 40, 4 → 60; quick accounts on the IP: 4 → 23.3, 5 → 46.7. The
    // 4th scores 69.3, the 5th 86.7 (BLOCK).
    expect(puppetCodes).toEqual([...Array(4).fill([]), ...Array(21).fill(['FRAUD_BLOCKED'])]);
    await sleep(300); // tally flush
    expect((await votesFor()) - before).toBe(4);

    // A script's burst: 12 new tokens on one IP, each voting at first sight, a new device id and
    // a different submission each: flagged from the 6th quick account, every vote counted.
    const burstCodes: unknown[][] = [];
    for (let i = 0; i < 12; i += 1) {
      const input = { competitionId: simple.competitionId, submissionId: simple.submissionIds[i % 6]! };
      burstCodes.push(
        codesOf(
          await gql(
            CastVoteDocument,
            { input },
            await tokenFor({ sub: `burst-${i}` }),
            from('203.0.113.77', `burst-phone-${i}`),
          ),
        ),
      );
    }
    expect(burstCodes).toEqual(Array(12).fill([]));

    // A bot re-casting approval ballots every 500 ms: of the server's clock, stepped (500 ms plus
    // the real time a ballot takes, as a script sleeping 500 ms between ballots would do).
    const botCodes: unknown[][] = [];
    for (let i = 0; i < 10; i += 1) {
      if (i > 0) await server.advanceClock(500);
      const approvals = approval.submissionIds.filter((_, j) => (i + j) % 2 === 0);
      botCodes.push(
        codesOf(
          await gql(
            CastVoteDocument,
            { input: { competitionId: approval.competitionId, approvals } },
            bot,
            from('203.0.113.99', 'bot-phone'),
          ),
        ),
      );
    }
    expect(botCodes.slice(0, 5)).toEqual(Array(5).fill([]));
    const firstBlocked = botCodes.findIndex((c) => c[0] === 'FRAUD_BLOCKED');
    // With a steady clock the 6th is blocked (RAPID_VOTING 50 + BOT_CADENCE 63 → 81.5); a loaded
    // machine adds jitter, so allow up to the 8th, and nothing gets through after.
    expect(firstBlocked).toBeGreaterThanOrEqual(5);
    expect(firstBlocked).toBeLessThanOrEqual(7);
    expect(botCodes.slice(firstBlocked).every((c) => c[0] === 'FRAUD_BLOCKED')).toBe(true);

    // Alerts are written off the hot path: wait for them.
    let alerts = dataOf(await gql(FraudAlertsDocument, { first: 100 }, admin));
    for (
      let i = 0;
      i < 50 && !alerts.fraudAlerts.some((a) => a.userId === 'metronome' && a.action === 'BLOCK');
      i += 1
    ) {
      await sleep(100);
      alerts = dataOf(await gql(FraudAlertsDocument, { first: 100 }, admin));
    }
    const byUser = alerts.fraudAlerts.map((a) => a.userId!);
    expect(byUser.filter((u) => u.startsWith('crowd-'))).toEqual([]);
    expect(byUser.filter((u) => u.startsWith('puppet-')).sort()).toEqual(
      Array.from({ length: 21 }, (_, i) => `puppet-${i + 4}`).sort(),
    );
    const burstAlerts = alerts.fraudAlerts.filter((a) => a.userId!.startsWith('burst-'));
    expect(burstAlerts.map((a) => [a.userId, a.rule, a.action]).sort()).toEqual(
      Array.from({ length: 7 }, (_, i) => [`burst-${i + 5}`, 'NEW_ACCOUNT_BULK', 'FLAG']).sort(),
    );
    const botAlert = alerts.fraudAlerts.find((a) => a.userId === 'metronome' && a.action === 'BLOCK')!;
    expect((botAlert.details as { rules: { rule: string }[] }).rules.map((r) => r.rule)).toEqual(
      expect.arrayContaining(['BOT_CADENCE', 'RAPID_VOTING']),
    );

    const { fraudStats } = dataOf(await gql(FraudStatsDocument, { competitionId: simple.competitionId }, admin));
    expect(fraudStats.votes).toEqual({ allowed: voters.length + 4 + 5, flagged: 7, blocked: 21 });
    console.log(
      `fraud e2e: ${ballots.length} honest ballots from ${voters.length} voters and 8 QUADRATIC steps → 0 flagged, 0 blocked; ` +
        `25 puppets → 4 allowed, 21 blocked; a burst of 12 → 5 allowed, 7 flagged; bot → first blocked at ballot ${firstBlocked + 1} of 10`,
    );
  });
});
