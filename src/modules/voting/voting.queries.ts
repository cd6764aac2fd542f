/**
 * The standings read model: running totals (TallyTotal, TallyDelta rows kept by statement
 * triggers on BallotEntry) read into standings, and the fold that keeps the delta rows few.
 * Shared by the publisher, the leaderboard and the dashboard.
 */
import type { Prisma } from '../../generated/prisma/client.js';
import { CompetitionStatus } from '../../generated/prisma/enums.js';
import { rankEntries, totalVotes, type TallyCount, type TallyEntry } from './voting.rules.js';

export interface TallySnapshot {
  competitionId: string;
  /** CLOSED: these standings are final and the stream ends after them. */
  status: CompetitionStatus;
  totalVotes: number;
  entries: TallyEntry[];
}

const MINUTE_MS = 60_000;

/**
 * Every submission with its count, zero rows included; score by the competition's method
 * (RANKED: Borda points n - position, i.e. n * voters - sum of positions); momentum over the two
 * minutes before `now`. Null when the competition does not exist.
 *
 * Cost: one TallyTotal row per submission and one TallyDelta row per submission and connection
 * that wrote ballots (foldTallyDeltas), plus the ballots changed in the last two minutes
 * (momentum, through BallotEntry's updatedAt index); never the stored ballots as a whole, so a
 * competition's history does not slow it down.
 */
export async function readStandings(
  tx: Pick<Prisma.TransactionClient, '$queryRaw'>,
  competitionId: string,
  now: Date,
): Promise<TallySnapshot | null> {
  const minuteAgo = new Date(now.getTime() - MINUTE_MS);
  const twoMinutesAgo = new Date(now.getTime() - 2 * MINUTE_MS);
  // One round trip (every flush runs this, ~1/TALLY_FLUSH_MS under load): no row at all means no
  // such competition; one row without a submissionId, a competition without submissions.
  const rows = await tx.$queryRaw<
    (Omit<TallyCount, 'submissionId'> & {
      submissionId: string | null;
      previousMinute: number;
      status: CompetitionStatus;
    })[]
  >`
    WITH c AS (SELECT "votingMethod" = 'RANKED' AS ranked, "status"::text AS status FROM "Competition" WHERE "id" = ${competitionId}),
         n AS (SELECT COUNT(*)::bigint AS n FROM "Submission" WHERE "competitionId" = ${competitionId}),
         pending AS (
           SELECT "submissionId", SUM("voters")::bigint AS voters, SUM("votes")::bigint AS votes, SUM("positions")::bigint AS positions
           FROM "TallyDelta" WHERE "competitionId" = ${competitionId} GROUP BY 1),
         recent AS (
           SELECT "submissionId", COUNT(*) FILTER (WHERE "updatedAt" > ${minuteAgo}) AS last, COUNT(*) FILTER (WHERE "updatedAt" <= ${minuteAgo}) AS previous
           FROM "BallotEntry" WHERE "competitionId" = ${competitionId} AND "updatedAt" > ${twoMinutesAgo} GROUP BY 1),
         counts AS (
           SELECT s."id", COALESCE(t."voters", 0) + COALESCE(p.voters, 0) AS voters, COALESCE(t."votes", 0) + COALESCE(p.votes, 0) AS votes,
                  COALESCE(t."positions", 0) + COALESCE(p.positions, 0) AS positions, COALESCE(r.last, 0) AS last, COALESCE(r.previous, 0) AS previous
           FROM "Submission" s
           LEFT JOIN "TallyTotal" t ON t."competitionId" = s."competitionId" AND t."submissionId" = s."id"
           LEFT JOIN pending p ON p."submissionId" = s."id"
           LEFT JOIN recent r ON r."submissionId" = s."id"
           WHERE s."competitionId" = ${competitionId})
    SELECT counts."id" AS "submissionId", counts.voters::int AS "votes",
           (CASE WHEN c.ranked THEN (SELECT n FROM n) * counts.voters - counts.positions ELSE counts.votes END)::float8 AS "score",
           counts.last::int AS "votesLastMinute", counts.previous::int AS "previousMinute", c.status AS "status"
    FROM c LEFT JOIN counts ON true`;
  if (rows.length === 0) return null;
  const counts = rows
    .filter((row): row is typeof row & { submissionId: string } => row.submissionId !== null)
    .map(({ previousMinute, status: _status, ...count }) => ({
      ...count,
      momentum: count.votesLastMinute! - previousMinute,
    }));
  const entries = rankEntries(counts);
  return { competitionId, status: rows[0]!.status, totalVotes: totalVotes(entries), entries };
}

/**
 * Moves the competition's TallyDelta rows of connections that have ended into TallyTotal, so the
 * rows a read adds up stay as few as the connections that write (those of live connections go on
 * accumulating in place: folding them would only create dead rows). One statement; a row that a
 * connection holds (a new connection that got an ended one's process id) is left for a later
 * fold rather than waited for, so a fold never waits for a writer. Run by every flush.
 */
export async function foldTallyDeltas(
  tx: Pick<Prisma.TransactionClient, '$executeRaw'>,
  competitionId: string,
): Promise<void> {
  await tx.$executeRaw`
    WITH gone AS (
      SELECT d."submissionId", d."backend" FROM "TallyDelta" d
      WHERE d."competitionId" = ${competitionId} AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a."pid" = d."backend")
      FOR UPDATE SKIP LOCKED
    ), moved AS (
      DELETE FROM "TallyDelta" d USING gone
      WHERE d."competitionId" = ${competitionId} AND d."submissionId" = gone."submissionId" AND d."backend" = gone."backend"
      RETURNING d."submissionId", d."voters", d."votes", d."positions"
    ), sums AS (
      SELECT "submissionId", SUM("voters")::int AS voters, SUM("votes")::bigint AS votes, SUM("positions")::bigint AS positions
      FROM moved GROUP BY 1
    )
    INSERT INTO "TallyTotal" ("competitionId", "submissionId", "voters", "votes", "positions")
    SELECT ${competitionId}, sums."submissionId", sums.voters, sums.votes, sums.positions
    FROM sums JOIN "Submission" s ON s."id" = sums."submissionId" AND s."competitionId" = ${competitionId}
    ORDER BY sums."submissionId"
    ON CONFLICT ("competitionId", "submissionId") DO UPDATE
      SET "voters" = "TallyTotal"."voters" + EXCLUDED."voters",
          "votes" = "TallyTotal"."votes" + EXCLUDED."votes",
          "positions" = "TallyTotal"."positions" + EXCLUDED."positions"`;
}
