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
    "id" BIGSERIAL NOT NULL,
    "competitionId" TEXT NOT NULL,
    "submissionId" TEXT NOT NULL,
    "voters" INTEGER NOT NULL,
    "votes" BIGINT NOT NULL,
    "positions" BIGINT NOT NULL,

    CONSTRAINT "TallyDelta_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "TallyDelta_competitionId_idx" ON "TallyDelta"("competitionId");

-- AddForeignKey
ALTER TABLE "TallyTotal" ADD CONSTRAINT "TallyTotal_competitionId_fkey" FOREIGN KEY ("competitionId") REFERENCES "Competition"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "TallyTotal" ADD CONSTRAINT "TallyTotal_submissionId_fkey" FOREIGN KEY ("submissionId") REFERENCES "Submission"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Every change to BallotEntry, whoever makes it (the vote writer, an instance of the previous
-- version during a rolling upgrade, a cascade, a fix by hand), appends its net effect per
-- submission to TallyDelta in the same statement, so TallyTotal + TallyDelta always equals a
-- recount. Statement-level with transition tables: one INSERT per statement whatever its number of
-- rows, and no lock on a shared row (hot submissions get hundreds of votes a second). TRUNCATE is
-- not covered: after one, empty TallyTotal and TallyDelta too.
CREATE FUNCTION "ballot_entry_tally_delta"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO "TallyDelta" ("competitionId", "submissionId", "voters", "votes", "positions")
    SELECT "competitionId", "submissionId", COUNT(*), SUM("votes"), COALESCE(SUM("position"), 0)
    FROM new_rows GROUP BY 1, 2;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO "TallyDelta" ("competitionId", "submissionId", "voters", "votes", "positions")
    SELECT "competitionId", "submissionId", -COUNT(*), -SUM("votes"), -COALESCE(SUM("position"), 0)
    FROM old_rows GROUP BY 1, 2;
  ELSE
    INSERT INTO "TallyDelta" ("competitionId", "submissionId", "voters", "votes", "positions")
    SELECT "competitionId", "submissionId", SUM(d."voters"), SUM(d."votes"), SUM(d."positions")
    FROM (
      SELECT "competitionId", "submissionId", 1 AS "voters", "votes"::bigint AS "votes", COALESCE("position", 0)::bigint AS "positions" FROM new_rows
      UNION ALL
      SELECT "competitionId", "submissionId", -1, -"votes"::bigint, -COALESCE("position", 0)::bigint FROM old_rows
    ) d
    GROUP BY 1, 2
    HAVING SUM(d."voters") <> 0 OR SUM(d."votes") <> 0 OR SUM(d."positions") <> 0;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER "BallotEntry_tally_insert" AFTER INSERT ON "BallotEntry"
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "ballot_entry_tally_delta"();
CREATE TRIGGER "BallotEntry_tally_update" AFTER UPDATE ON "BallotEntry"
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION "ballot_entry_tally_delta"();
CREATE TRIGGER "BallotEntry_tally_delete" AFTER DELETE ON "BallotEntry"
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION "ballot_entry_tally_delta"();

-- The ballots stored so far. CREATE TRIGGER above locked BallotEntry against writes until this
-- migration commits, so nothing is counted twice or missed.
INSERT INTO "TallyTotal" ("competitionId", "submissionId", "voters", "votes", "positions")
SELECT "competitionId", "submissionId", COUNT(*), SUM("votes"), COALESCE(SUM("position"), 0)
FROM "BallotEntry" GROUP BY 1, 2;
