/**
 * The running tally totals on both backends: whatever happens to the ballots (concurrent bursts of
 * every method, idempotent retries, replaced ballots, submissions added after votes, a restart on
 * the same database), leaderboard, Query.tally and the final published standings equal a recount
 * of the stored ballots by SQL; a flush reads the totals, not the stored ballots; the changes made
 * through a connection that has ended are folded into TallyTotal.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CastVoteDocument,
  CloseCompetitionDocument,
  LeaderboardDocument,
  TallyDocument,
  TallyStandingsUntilClosedDocument,
} from '../generated/graphql.js';
import { sequenceStandings } from '../../src/modules/voting/voting.events.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { backends, postgresRedis } from '../support/backends.js';
import { subscribe } from '../support/clients.js';
import { dataOf, execute, tokenFor } from '../support/graphql.js';
import {
  addSubmission,
  burst,
  runningTotals,
  openCompetitions,
  recount,
  standingsOf,
  type ScenarioCompetition,
  type Sql,
} from '../support/voting-scenario.js';

describe.each(backends)('running tally totals on $name', (backend) => {
  let infra: Awaited<ReturnType<typeof backend.start>>;
  let dataDir: string;
  let t: TestApp;
  let admin: string;
  const sql: Sql = (text, params) => t.app.database.prisma.$queryRawUnsafe(text, ...params);

  beforeAll(async () => {
    infra = await backend.start();
    // Kept across the restart (the embedded database lives there).
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'ovation-totals-'));
    t = await startTestApp(infra.env, { dataDir });
    admin = await tokenFor({ sub: 'totals-admin', role: 'ADMIN' });
  });
  afterAll(async () => {
    await t?.stop();
    await infra?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  async function expectQueriesExact(competitions: readonly ScenarioCompetition[]): Promise<void> {
    for (const competition of competitions) {
      const expected = await recount(sql, competition.id);
      const { leaderboard } = dataOf(
        await execute(fetch, t.graphqlUrl, LeaderboardDocument, { competitionId: competition.id }),
      );
      expect(standingsOf(leaderboard), `leaderboard of ${competition.method}`).toEqual(expected);
      const { tally } = dataOf(await execute(fetch, t.graphqlUrl, TallyDocument, { competitionId: competition.id }));
      expect(standingsOf(tally.entries), `tally of ${competition.method}`).toEqual(expected);
      expect(tally.totalVotes).toBe(expected.reduce((sum, s) => sum + s.votes, 0));
    }
  }

  // ~600 votes in three bursts and two retries, four closes and a restart of the app. Measured on
  // PGlite (one core, serial): 15 s at load 12, 50-54 s at load 13-17 on the 2 shared cores.
  it(
    'leaderboard, tally and the final published standings equal a recount after bursts, retries, replacements, new submissions and a restart',
    { timeout: 120_000 },
    async () => {
      const competitions = await openCompetitions(t.graphqlUrl, admin, 3);
      const first = await burst([t.graphqlUrl], competitions, 1, 16, `${backend.name}-exact`);
      await expectQueriesExact(competitions);

      // Submissions added after votes: RANKED points of every existing ballot grow with n.
      for (const competition of competitions) await addSubmission(t.graphqlUrl, admin, competition);
      await burst([t.graphqlUrl], competitions, 2, 16, `${backend.name}-exact`);
      await first.retry([t.graphqlUrl]);
      await expectQueriesExact(competitions);

      // A restart on the same database: totals, pending deltas and idempotency keys survive it.
      await t.stop();
      t = await startTestApp(infra.env, { dataDir });
      await first.retry([t.graphqlUrl]);
      await burst([t.graphqlUrl], competitions, 3, 16, `${backend.name}-exact`);
      await expectQueriesExact(competitions);

      for (const competition of competitions) {
        const feed = subscribe('graphql-ws', t.url, TallyStandingsUntilClosedDocument, {
          competitionId: competition.id,
        });
        try {
          await feed.waitFor((r) => r.data !== undefined);
          dataOf(await execute(fetch, t.graphqlUrl, CloseCompetitionDocument, { id: competition.id }, admin));
          await feed.ended;
          const final = feed.results.at(-1)?.data?.tallyUpdated;
          expect(final?.status).toBe('CLOSED');
          const expected = await recount(sql, competition.id);
          expect(standingsOf(final!.entries), `final standings of ${competition.method}`).toEqual(expected);
          expect(await runningTotals(sql, competition.id)).toEqual(expected);
        } finally {
          await feed.close();
        }
      }
    },
  );

  it('a flush reads one total per submission and only the ballots changed in the last two minutes, however many are stored', async () => {
    const competitions = await openCompetitions(t.graphqlUrl, admin, 3);
    const prisma = t.app.database.prisma;
    // A long history, written an hour ago (straight into the table, as a migration or import would).
    for (const competition of competitions) {
      await sql(
        `INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "votes", "position", "updatedAt")
         SELECT $1, 'history-' || g, s."id", 1 + g % 3 * $2::int, CASE WHEN $3 THEN s.ord END, now() - interval '1 hour'
         FROM generate_series(1, 1000) g
         CROSS JOIN (SELECT "id", row_number() OVER (ORDER BY "id")::int AS ord FROM "Submission" WHERE "competitionId" = $1) s`,
        [competition.id, competition.method === 'QUADRATIC' ? 1 : 0, competition.method === 'RANKED'],
      );
    }
    const recentVoters = 4;
    for (let v = 0; v < recentVoters; v += 1) {
      const token = await tokenFor({ sub: `${backend.name}-recent-${v}` });
      for (const competition of competitions) {
        const ballot = {
          SIMPLE: { submissionId: competition.submissionIds[v % 3] },
          QUADRATIC: { submissionId: competition.submissionIds[v % 3], votes: 2 },
          RANKED: { ranking: competition.submissionIds },
          APPROVAL: { approvals: competition.submissionIds.slice(0, 2) },
        }[competition.method];
        dataOf(
          await execute(
            fetch,
            t.graphqlUrl,
            CastVoteDocument,
            { input: { competitionId: competition.id, ...ballot } },
            token,
          ),
        );
      }
    }
    // Plans as on a database with this history (PGlite has no autovacuum to do it).
    await prisma.$executeRawUnsafe('ANALYZE "BallotEntry"');

    const counters = async (tx: Pick<typeof prisma, '$queryRaw'>) => {
      const [row] = await tx.$queryRaw<{ scans: number; tuples: number }[]>`
        SELECT seq_scan::int AS scans, (seq_tup_read + COALESCE(idx_tup_fetch, 0))::int AS tuples
        FROM pg_stat_xact_user_tables WHERE relname = 'BallotEntry'`;
      return row!;
    };
    for (const competition of competitions) {
      const [{ recent } = { recent: 0 }] = await sql<{ recent: number }>(
        `SELECT COUNT(*)::int AS recent FROM "BallotEntry" WHERE "competitionId" = $1 AND "updatedAt" > now() - interval '2 minutes'`,
        [competition.id],
      );
      expect(recent).toBeGreaterThan(0);
      const read = await prisma.$transaction(async (tx) => {
        const before = await counters(tx);
        // No window: the flush's whole work (fold, read), whether or not the app published these standings already.
        await sequenceStandings(tx, competition.id, null);
        const after = await counters(tx);
        return { scans: after.scans - before.scans, tuples: after.tuples - before.tuples };
      });
      // Before the running totals, this read every one of the 3,000+ stored ballots.
      expect(read.scans, `sequential scans of BallotEntry (${competition.method})`).toBe(0);
      expect(read.tuples, `ballots read (${competition.method})`).toBeLessThanOrEqual(recent);
      const { leaderboard } = dataOf(
        await execute(fetch, t.graphqlUrl, LeaderboardDocument, { competitionId: competition.id }),
      );
      expect(standingsOf(leaderboard)).toEqual(await recount(sql, competition.id));
    }
  });

  // PGlite has a single connection, which never ends while the app runs.
  it.skipIf(backend !== postgresRedis)(
    'folds the changes made through a connection that has ended into the totals',
    async () => {
      const [competition] = await openCompetitions(t.graphqlUrl, admin, 2);
      const [s0, s1] = competition!.submissionIds as [string, string];
      const other = new pg.Client({ connectionString: infra.env['DATABASE_URL'] });
      await other.connect();
      const [{ pid }] = (await other.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [
        { pid: number },
      ];
      await other.query(
        `INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "updatedAt")
       SELECT $1, 'other-connection-' || g, CASE WHEN g <= 5 THEN $2 ELSE $3 END, now() FROM generate_series(1, 7) g`,
        [competition!.id, s0, s1],
      );
      const deltasOf = () =>
        sql<{ submissionId: string; voters: number }>(
          `SELECT "submissionId", "voters" FROM "TallyDelta" WHERE "competitionId" = $1 AND "backend" = $2 ORDER BY "voters" DESC`,
          [competition!.id, pid],
        );
      expect(await deltasOf()).toEqual([
        { submissionId: s0, voters: 5 },
        { submissionId: s1, voters: 2 },
      ]);

      // A flush leaves a live connection's rows where they are (they keep accumulating in place) ...
      await t.app.database.prisma.$transaction((tx) => sequenceStandings(tx, competition!.id, null));
      expect(await deltasOf()).toHaveLength(2);
      // ... and folds those of a connection that has ended.
      await other.end();
      await expect
        .poll(
          async () =>
            (await sql<{ n: number }>('SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE "pid" = $1', [pid]))[0]?.n,
        )
        .toBe(0);
      await t.app.database.prisma.$transaction((tx) => sequenceStandings(tx, competition!.id, null));
      expect(await deltasOf()).toEqual([]);
      const totals = await sql<{ submissionId: string; voters: number }>(
        `SELECT "submissionId", "voters" FROM "TallyTotal" WHERE "competitionId" = $1 ORDER BY "voters" DESC`,
        [competition!.id],
      );
      expect(totals).toEqual([
        { submissionId: s0, voters: 5 },
        { submissionId: s1, voters: 2 },
      ]);
      expect(await runningTotals(sql, competition!.id)).toEqual(await recount(sql, competition!.id));
      const { leaderboard } = dataOf(
        await execute(fetch, t.graphqlUrl, LeaderboardDocument, { competitionId: competition!.id }),
      );
      expect(standingsOf(leaderboard)).toEqual(await recount(sql, competition!.id));
    },
  );
});
