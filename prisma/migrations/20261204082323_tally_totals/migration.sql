-- CreateTable
CREATE TABLE "TallyTotal" (
    "competitionId" TEXT NOT NULL,
    "submissionId" TEXT NOT NULL,
    "voters" INTEGER NOT NULL DEFAULT 0,
    "votes" BIGINT NOT NULL DEFAULT 0,
    "positions" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "TallyTotal_pkey" PRIMARY KEY ("competitionId","submissionId")
);

-- CreateTable
CREATE TABLE "TallyDelta" (
    "competitionId" TEXT NOT NULL,
    "submissionId" TEXT NOT NULL,
    "backend" INTEGER NOT NULL,
    "voters" INTEGER NOT NULL DEFAULT 0,
    "votes" BIGINT NOT NULL DEFAULT 0,
    "positions" BIGINT NOT NULL DEFAULT 0,

    CONSTRAINT "TallyDelta_pkey" PRIMARY KEY ("competitionId","submissionId","backend")
);

-- AddForeignKey
ALTER TABLE "TallyTotal" ADD CONSTRAINT "TallyTotal_competitionId_fkey" FOREIGN KEY ("competitionId") REFERENCES "Competition"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TallyTotal" ADD CONSTRAINT "TallyTotal_submissionId_fkey" FOREIGN KEY ("submissionId") REFERENCES "Submission"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Every change to BallotEntry, whoever makes it (the vote writer, an instance of the previous
-- version during a rolling upgrade, a cascade, a fix by hand), adds its net effect per submission
-- to TallyDelta in the same statement, on the row of the connection running it. So TallyTotal +
-- TallyDelta always equals a recount, and no two connections ever wait for the same row, however
-- hot the submission. Statement-level with transition tables: one upsert per statement whatever
-- its number of rows. TRUNCATE is not covered: after one, empty TallyTotal and TallyDelta too.
CREATE FUNCTION "ballot_entry_tally_delta"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  sign int := CASE WHEN TG_OP = 'DELETE' THEN -1 ELSE 1 END;
BEGIN
  IF TG_OP = 'UPDATE' THEN
    INSERT INTO "TallyDelta" AS d ("competitionId", "submissionId", "backend", "voters", "votes", "positions")
    SELECT c."competitionId", c."submissionId", pg_backend_pid(), SUM(c.voters), SUM(c.votes), SUM(c.positions)
    FROM (
      SELECT "competitionId", "submissionId", 1 AS voters, "votes"::bigint AS votes, COALESCE("position", 0)::bigint AS positions FROM new_rows
      UNION ALL
      SELECT "competitionId", "submissionId", -1, -"votes"::bigint, -COALESCE("position", 0)::bigint FROM old_rows
    ) c
    GROUP BY 1, 2
    HAVING SUM(c.voters) <> 0 OR SUM(c.votes) <> 0 OR SUM(c.positions) <> 0
    ON CONFLICT ("competitionId", "submissionId", "backend") DO UPDATE
      SET "voters" = d."voters" + EXCLUDED."voters", "votes" = d."votes" + EXCLUDED."votes", "positions" = d."positions" + EXCLUDED."positions";
  ELSE
    INSERT INTO "TallyDelta" AS d ("competitionId", "submissionId", "backend", "voters", "votes", "positions")
    SELECT "competitionId", "submissionId", pg_backend_pid(), sign * COUNT(*), sign * SUM("votes"), sign * COALESCE(SUM("position"), 0)
    FROM changed_rows
    GROUP BY 1, 2
    ON CONFLICT ("competitionId", "submissionId", "backend") DO UPDATE
      SET "voters" = d."voters" + EXCLUDED."voters", "votes" = d."votes" + EXCLUDED."votes", "positions" = d."positions" + EXCLUDED."positions";
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER "BallotEntry_tally_insert" AFTER INSERT ON "BallotEntry"
  REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION "ballot_entry_tally_delta"();
CREATE TRIGGER "BallotEntry_tally_delete" AFTER DELETE ON "BallotEntry"
  REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION "ballot_entry_tally_delta"();
CREATE TRIGGER "BallotEntry_tally_update" AFTER UPDATE ON "BallotEntry"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "ballot_entry_tally_delta"();

-- The ballots stored so far. CREATE TRIGGER above locked BallotEntry against writes until this
-- migration commits, so nothing is counted twice or missed.
INSERT INTO "TallyTotal" ("competitionId", "submissionId", "voters", "votes", "positions")
SELECT "competitionId", "submissionId", COUNT(*), SUM("votes"), COALESCE(SUM("position"), 0)
FROM "BallotEntry" GROUP BY 1, 2;
