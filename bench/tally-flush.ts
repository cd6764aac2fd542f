/**
 * What a tally flush costs as ballots accumulate (issue 12, target e): competitions with 1,000 and
 * 1,000,000 stored ballots side by side in ONE database, the ballots written straight into
 * BallotEntry by SQL an hour ago (history: momentum only looks at the last two minutes;
 * --history-age-s under 120 makes them all recent, to see what momentum costs). Then,
 * alternating between the competitions, a few live ballots are written (as a vote batch would)
 * and the flush transaction is timed (sequenceStandings without the window: fold the deltas, read
 * the standings, take the seq), as is the read alone (leaderboard, Query.tally) and, for
 * comparison, the recount the flush ran before the running totals (read only, not published).
 *
 *   npx tsx bench/tally-flush.ts [--backend postgres,pglite] [--stored 1000,1000000] [--flushes 100]
 *                                [--submissions 5] [--method SIMPLE|QUADRATIC|RANKED|APPROVAL] [--no-analyze]
 *                                [--history-age-s 3600]   (e.g. 30: every stored ballot is recent, what momentum reads)
 *                                [--close]   (then close each competition once, timed: for RANKED the
 *                                             instant-runoff reads every stored ballot, once per competition)
 *
 * PostgreSQL: a throwaway PostgreSQL 15 (bench/lib/postgres.ts). PGlite: on disk in a temp dir,
 * as the embedded default runs. Both share the machine with whatever else runs: the ratio of two
 * competitions measured in alternation is the figure to read, not the absolute times.
 */
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import type { Database } from '../src/infra/database.js';
import { createCompetitionsService } from '../src/modules/competitions/competitions.service.js';
import { sequenceStandings } from '../src/modules/voting/voting.events.js';
import { readStandings } from '../src/modules/voting/voting.queries.js';
import { backendsOf, withDatabase } from './lib/database.js';

const POOL_SIZE = 4;
const { values } = parseArgs({
  options: {
    backend: { type: 'string', default: 'postgres,pglite' },
    stored: { type: 'string', default: '1000,1000000' },
    flushes: { type: 'string', default: '100' },
    submissions: { type: 'string', default: '5' },
    method: { type: 'string', default: 'RANKED' },
    'no-analyze': { type: 'boolean', default: false },
    /** How long ago the stored ballots were written [3600]: under 120 s, momentum counts them all. */
    'history-age-s': { type: 'string', default: '3600' },
    close: { type: 'boolean', default: false },
  },
});
const storedCounts = values.stored.split(',').map(Number);
const flushes = Number(values.flushes);
const submissionCount = Number(values.submissions);
const method = values.method;
const LIVE_PER_FLUSH = 10;
const CHUNK = 100_000;

/** The standings query every flush ran before the running totals: a recount of every stored ballot. */
async function recountAsBefore(db: Database, competitionId: string, now: Date): Promise<void> {
  const minuteAgo = new Date(now.getTime() - 60_000);
  const twoMinutesAgo = new Date(now.getTime() - 120_000);
  await db.prisma.$queryRaw`
    WITH c AS (SELECT "votingMethod" = 'RANKED' AS ranked, "status"::text AS status FROM "Competition" WHERE "id" = ${competitionId}),
         n AS (SELECT COUNT(*)::int AS n FROM "Submission" WHERE "competitionId" = ${competitionId})
    SELECT s."id" AS "submissionId",
           COUNT(b."submissionId")::int AS "votes",
           CASE WHEN c.ranked THEN COALESCE(SUM(GREATEST((SELECT n FROM n) - b."position", 0)), 0)
                ELSE COALESCE(SUM(b."votes"), 0) END::float8 AS "score",
           COUNT(b."submissionId") FILTER (WHERE b."updatedAt" > ${minuteAgo})::int AS "votesLastMinute",
           COUNT(b."submissionId") FILTER (WHERE b."updatedAt" > ${twoMinutesAgo} AND b."updatedAt" <= ${minuteAgo})::int AS "previousMinute",
           c.status AS "status"
    FROM c
    LEFT JOIN "Submission" s ON s."competitionId" = ${competitionId}
    LEFT JOIN "BallotEntry" b ON b."competitionId" = s."competitionId" AND b."submissionId" = s."id"
    GROUP BY c.ranked, c.status, s."id"`;
}

async function createCompetition(db: Database, stored: number): Promise<string> {
  const id = randomUUID();
  await db.prisma.$executeRawUnsafe(
    `INSERT INTO "Competition" ("id", "title", "votingMethod", "status", "creditsPerVoter", "updatedAt") VALUES ($1, $2, $3::"VotingMethod", 'OPEN', $4, now())`,
    id,
    `flush bench ${stored}`,
    method,
    method === 'QUADRATIC' ? 1_000_000 : null,
  );
  await db.prisma.$executeRawUnsafe(`INSERT INTO "TopicSequence" ("topic", "seq") VALUES ($1, 0)`, `tally:${id}`);
  for (let i = 0; i < submissionCount; i += 1) {
    await db.prisma.$executeRawUnsafe(
      `INSERT INTO "Submission" ("id", "competitionId", "title") VALUES ($1, $2, $3)`,
      randomUUID(),
      id,
      `S${i}`,
    );
  }
  // `stored` ballot entries: whole ballots of submissionCount entries for RANKED and APPROVAL, one entry per voter otherwise.
  const perVoter = method === 'RANKED' || method === 'APPROVAL' ? submissionCount : 1;
  const voters = Math.ceil(stored / perVoter);
  for (let from = 1; from <= voters; from += CHUNK) {
    const to = Math.min(voters, from + CHUNK - 1);
    await db.prisma.$executeRawUnsafe(
      `INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "votes", "position", "updatedAt")
       SELECT $1, 'history-' || g, s."id", CASE WHEN $2 = 'QUADRATIC' THEN 1 + g % 5 ELSE 1 END,
              CASE WHEN $2 = 'RANKED' THEN s.ord END, now() - make_interval(secs => ${Number(values['history-age-s'])})
       FROM generate_series($3::int, $4::int) g
       JOIN (SELECT "id", row_number() OVER (ORDER BY "id")::int AS ord FROM "Submission" WHERE "competitionId" = $1) s
         ON $5::int > 1 OR s.ord = 1 + g % ${submissionCount}`,
      id,
      method,
      from,
      to,
      perVoter,
    );
  }
  // The history's deltas are folded by the first flush, as they would have been long ago.
  await db.prisma.$transaction((tx) => sequenceStandings(tx, id, null), { timeout: 600_000 });
  return id;
}

let live = 0;
/** A vote batch's worth of new ballots (the triggers add their deltas). */
async function liveBallots(db: Database, competitionId: string): Promise<void> {
  const rows = Array.from({ length: LIVE_PER_FLUSH }, () => `live-${(live += 1)}`);
  await db.prisma.$executeRawUnsafe(
    `INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "votes", "position", "updatedAt")
     SELECT $1, v, s."id", 1, CASE WHEN $3 = 'RANKED' THEN s.ord END, now()
     FROM unnest($2::text[]) v
     JOIN (SELECT "id", row_number() OVER (ORDER BY "id")::int AS ord FROM "Submission" WHERE "competitionId" = $1) s ON s.ord = 1`,
    competitionId,
    rows,
    method,
  );
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - started) / 1e6;
}

const quantile = (xs: number[], q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};

async function measure(backend: string, db: Database): Promise<void> {
  const competitions: { stored: number; id: string; flush: number[]; read: number[]; before: number[] }[] = [];
  for (const stored of storedCounts) {
    const started = Date.now();
    competitions.push({ stored, id: await createCompetition(db, stored), flush: [], read: [], before: [] });
    console.error(`${backend}: ${stored} stored ballots written in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  if (!values['no-analyze']) await db.prisma.$executeRawUnsafe('ANALYZE');
  for (let round = 0; round < flushes + 5; round += 1) {
    for (const c of round % 2 === 0 ? competitions : [...competitions].reverse()) {
      await liveBallots(db, c.id);
      const flush = await timed(() => db.prisma.$transaction((tx) => sequenceStandings(tx, c.id, null)));
      const read = await timed(() => readStandings(db.prisma, c.id, new Date()));
      // The old recount is slow at 1M: every 10th round is plenty to show it.
      const before = round % 10 === 0 ? await timed(() => recountAsBefore(db, c.id, new Date())) : undefined;
      if (round >= 5) {
        c.flush.push(flush);
        c.read.push(read);
        if (before !== undefined) c.before.push(before);
      }
    }
  }
  const base = competitions[0]!;
  for (const c of competitions) {
    const line = (name: string, xs: number[], ref: number[]) =>
      `${backend.padEnd(8)} ${String(c.stored).padStart(9)} stored  ${name.padEnd(16)} p50 ${quantile(xs, 0.5).toFixed(2).padStart(8)} ms  p90 ${quantile(xs, 0.9).toFixed(2).padStart(8)} ms  (n=${xs.length})  p50 × ${(quantile(xs, 0.5) / quantile(ref, 0.5)).toFixed(2)} of ${base.stored}`;
    console.log(line('flush (tx)', c.flush, base.flush));
    console.log(line('read (leaderboard)', c.read, base.read));
    console.log(line('old recount read', c.before, base.before));
  }
  if (!values.close) return;
  // The close as the API runs it (final standings, and for RANKED the runoff over every ballot),
  // once per competition: the one step that reads the whole history, and only once.
  const competitionsService = createCompetitionsService({
    prisma: db.prisma,
    tallies: { markDirty: () => undefined, publish: () => undefined },
  });
  for (const c of competitions) {
    let failure = '';
    const ms = await timed(() =>
      competitionsService.close(c.id).catch((error: unknown) => {
        failure = `  FAILED: ${String(error instanceof Error ? error.message : error)
          .split('\n')
          .filter(Boolean)
          .at(-1)}`;
      }),
    );
    console.log(
      `${backend.padEnd(8)} ${String(c.stored).padStart(9)} stored  close (${method}) ${ms.toFixed(0).padStart(8)} ms${failure}`,
    );
  }
}

for (const backend of backendsOf(values.backend)) await withDatabase(backend, POOL_SIZE, (db) => measure(backend, db));
process.exit(0);
