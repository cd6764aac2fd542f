/**
 * Group commit for votes. Votes that arrive while a batch is being written wait for the next
 * batch, and each batch is one transaction: the competitions are read FOR SHARE once, SIMPLE
 * ballots go in with one multi-row INSERT each for entries and votes, other methods are applied
 * one by one under their voter's advisory lock. A vote is acknowledged only after its batch
 * committed, so nothing acknowledged is lost; one vote's expected failure (closed, already voted,
 * over budget) never affects the others in its batch.
 *
 * A batch of SIMPLE ballots, the common case, is first tried as one autocommitted statement with
 * the same guarantees (writeSimpleAtOnce); what it cannot decide takes the transaction.
 *
 * Rows are handled in (competitionId, voterId) order, so concurrent batches on several instances
 * take their locks in one order and cannot deadlock.
 *
 * The running totals the tallies read need nothing here: triggers on BallotEntry add each
 * statement's net change per submission to the TallyDelta row of the connection running it, in
 * the statement (see the migration *_tally_totals), and roll back with it. No statement is added
 * to a batch, and batches on other connections never wait on a hot submission's total.
 *
 * One file on purpose: the group commit's batching, its per-method SQL and its retry of refused
 * ballots are one protocol; each statement's shape depends on the batch built above it.
 */
import { randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient, Vote } from '../../generated/prisma/client.js';
import { CompetitionStatus, VotingMethod } from '../../generated/prisma/enums.js';
import { AppError, notFound } from '../../errors.js';
import { votingClosed } from '../competitions/competitions.errors.js';
import { parseBallot, quadraticCost, type Ballot, type BallotInput } from './voting.rules.js';
import { alreadyVoted, budgetExceeded } from './voting.errors.js';

export interface VoteRequest {
  voterId: string;
  competitionId: string;
  ballot: BallotInput;
  idempotencyKey: string | null;
  requestHash: string;
}

export type VoteOutcome =
  | { kind: 'recorded'; vote: Vote; creditsRemaining: number | null }
  /** The idempotency key was already taken (by an earlier request): look it up and replay. */
  | { kind: 'key-taken' };

interface Pending {
  request: VoteRequest;
  resolve: (outcome: VoteOutcome) => void;
  reject: (error: unknown) => void;
}

interface CompetitionRow {
  id: string;
  status: CompetitionStatus;
  votingMethod: VotingMethod;
  creditsPerVoter: number | null;
}

type Tx = Prisma.TransactionClient;

/**
 * Prisma's defaults (2 s for a connection, 5 s for the transaction) fail whole batches under load:
 * a batch of RANKED or QUADRATIC ballots waiting on its voters' advisory locks behind another
 * instance's batch outlasted 5 s at load ~23 (BENCHMARKS.md), and its votes failed though the
 * database was fine. A batch that is really stuck still fails, retryably, well before a client
 * gives up.
 */
const BATCH_MAX_WAIT_MS = 10_000;
const BATCH_TIMEOUT_MS = 20_000;
interface Settled {
  outcome?: VoteOutcome;
  error?: unknown;
}

export interface VoteWriter {
  write(request: VoteRequest): Promise<VoteOutcome>;
  /** Waits for every queued vote to be written. */
  drain(): Promise<void>;
}

export function createVoteWriter(deps: {
  prisma: PrismaClient;
  /** Batches written at the same time (each one connection). PGlite has one session: use 1. */
  concurrency: number;
  maxBatch?: number;
  /** Votes waiting before a batch starts next to a running one [32]. */
  minParallelBatch?: number;
  onCommitted: (competitionIds: ReadonlySet<string>) => void;
}): VoteWriter {
  const { prisma, concurrency, maxBatch = 256, minParallelBatch = 32, onCommitted } = deps;
  const queue: Pending[] = [];
  let running = 0;
  let idle: (() => void)[] = [];

  function pump(): void {
    // A batch in parallel only for a backlog: a few votes wait for the running batch instead, so
    // batches grow with the load and each statement (a fixed cost in Prisma and the driver)
    // carries more votes.
    while (queue.length > 0 && (running === 0 || (running < concurrency && queue.length >= minParallelBatch))) {
      const batch = queue.splice(0, maxBatch);
      running += 1;
      void writeBatch(batch).finally(() => {
        running -= 1;
        if (queue.length > 0) pump();
        else if (running === 0) {
          const waiters = idle;
          idle = [];
          waiters.forEach((wake) => wake());
        }
      });
    }
  }

  async function writeBatch(batch: Pending[]): Promise<void> {
    const settled = new Map<Pending, Settled>();
    let rest = batch;
    const simple = batch.filter((pending) => looksSimple(pending.request.ballot));
    if (simple.length > 0) {
      try {
        const leftovers = await writeSimpleAtOnce(prisma, simple, settled);
        rest = simple.length === batch.length ? leftovers : [...batch.filter((p) => !simple.includes(p)), ...leftovers];
      } catch {
        // One statement: nothing of it committed. Its votes take the transactional path, which
        // answers the same conflicts its own way and reports a database that is really down.
        for (const pending of simple) settled.delete(pending);
        rest = batch;
      }
    }
    if (rest.length > 0) {
      const inTransaction = new Map<Pending, Settled>();
      try {
        await prisma.$transaction(
          async (tx) => {
            inTransaction.clear();
            await applyBatch(tx, rest, inTransaction);
          },
          { maxWait: BATCH_MAX_WAIT_MS, timeout: BATCH_TIMEOUT_MS },
        );
        for (const [pending, result] of inTransaction) settled.set(pending, result);
      } catch (error) {
        // The transaction failed as a whole (database down, deadlock): nothing of it committed.
        for (const pending of rest) settled.set(pending, { error });
      }
    }
    const touched = new Set<string>();
    for (const pending of batch) {
      const result = settled.get(pending);
      if (result?.outcome) {
        if (result.outcome.kind === 'recorded') touched.add(pending.request.competitionId);
        pending.resolve(result.outcome);
      } else {
        pending.reject(result?.error ?? new Error('vote was not processed'));
      }
    }
    if (touched.size > 0) onCommitted(touched);
  }

  return {
    write(request) {
      return new Promise((resolve, reject) => {
        queue.push({ request, resolve, reject });
        // Votes arriving in the same tick join this batch; later ones the next.
        if (queue.length === 1) setImmediate(pump);
        else if (queue.length >= (running === 0 ? maxBatch : minParallelBatch)) pump();
      });
    },
    drain() {
      if (running === 0 && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => idle.push(resolve));
    },
  };
}

async function applyBatch(tx: Tx, batch: Pending[], settled: Map<Pending, Settled>): Promise<void> {
  const ordered = [...batch].sort(byCompetitionThenVoter);
  const competitionIds = [...new Set(ordered.map((p) => p.request.competitionId))];
  // One round trip for the lock and the submission sets: every statement costs the batch a
  // query through Prisma and the driver, whatever its size.
  const rows = await tx.$queryRaw<(CompetitionRow & { submissionIds: string[] })[]>`
    SELECT c."id", c."status", c."votingMethod", c."creditsPerVoter",
           ARRAY(SELECT s."id" FROM "Submission" s WHERE s."competitionId" = c."id") AS "submissionIds"
    FROM "Competition" c
    WHERE c."id" = ANY(${competitionIds}::text[]) ORDER BY c."id" FOR SHARE OF c`;
  const competitions = new Map(rows.map((c) => [c.id, c]));
  const submissions = new Map(rows.map((c) => [c.id, new Set(c.submissionIds)]));

  const fail = (pending: Pending, error: unknown) => settled.set(pending, { error });
  const simple: { pending: Pending; submissionId: string }[] = [];
  const others: { pending: Pending; ballot: Exclude<Ballot, { method: 'SIMPLE' }>; competition: CompetitionRow }[] = [];
  for (const pending of ordered) {
    const { request } = pending;
    const competition = competitions.get(request.competitionId);
    try {
      if (!competition) throw notFound('Competition', request.competitionId);
      const ballot = parseBallot(
        competition.votingMethod,
        request.ballot,
        submissions.get(competition.id) ?? new Set(),
      );
      if (competition.status !== CompetitionStatus.OPEN) throw votingClosed(competition.id, competition.status);
      if (ballot.method === 'SIMPLE') simple.push({ pending, submissionId: ballot.submissionId });
      else others.push({ pending, ballot, competition });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      fail(pending, error);
    }
  }

  if (simple.length > 0) await writeSimple(tx, simple, settled);
  for (const { pending, ballot, competition } of others) {
    try {
      settled.set(pending, { outcome: await writeOne(tx, pending.request, ballot, competition) });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      fail(pending, error);
    }
  }
}

const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const byCompetitionThenVoter = (a: Pending, b: Pending): number =>
  a.request.competitionId === b.request.competitionId
    ? compare(a.request.voterId, b.request.voterId)
    : compare(a.request.competitionId, b.request.competitionId);

/** The shape of a SIMPLE ballot; whether the competition is SIMPLE is for the database to say. */
const looksSimple = (ballot: BallotInput): boolean =>
  typeof ballot.submissionId === 'string' && ballot.votes == null && ballot.ranking == null && ballot.approvals == null;

type AtOnceRow = { ord: number; valid: boolean } & { [K in keyof Vote]: Vote[K] | null };

/**
 * The common case, a batch of SIMPLE ballots for OPEN competitions, as ONE autocommitted
 * statement instead of a transaction of five round trips (BEGIN, the competitions FOR SHARE, the
 * entries, the votes, COMMIT): each round trip costs far more CPU in Prisma and the driver than
 * the rows it carries. The statement keeps the transaction's guarantees:
 * - the competitions are read FOR SHARE in it and filtered on status OPEN (a close waits for its
 *   commit, or it sees CLOSED: votes never race a close), and the vote is answered after it
 *   committed;
 * - a vote is only inserted for an entry it inserted, and an entry whose key turns out taken
 *   (only possible when the same voter sends one key with two ballots at once) fails the whole
 *   statement (division by zero): no entry is ever committed without its vote, no vote without
 *   its entry.
 * What it cannot decide (unknown competition or submission, not OPEN, not SIMPLE, a key used
 * before) it leaves alone, and those votes take the transactional path, which has every rule and
 * error message. Returns them.
 */
async function writeSimpleAtOnce(
  prisma: PrismaClient,
  items: Pending[],
  settled: Map<Pending, Settled>,
): Promise<Pending[]> {
  const ordered = [...items].sort(byCompetitionThenVoter);
  const requests = ordered.map((p) => p.request);
  const competitionIds = [...new Set(requests.map((r) => r.competitionId))];
  const now = new Date();
  const rows = await prisma.$queryRaw<AtOnceRow[]>`
    WITH input AS (
      SELECT * FROM unnest(${requests.map(() => randomUUID())}::text[], ${requests.map((r) => r.competitionId)}::text[],
                           ${requests.map((r) => r.voterId)}::text[], ${requests.map((r) => r.ballot.submissionId)}::text[],
                           ${requests.map((r) => r.idempotencyKey)}::text[], ${requests.map((r) => r.requestHash)}::text[])
        WITH ORDINALITY AS i(id, c, v, s, k, h, ord)
    ), open AS MATERIALIZED (
      SELECT "id" FROM "Competition"
      WHERE "id" = ANY(${competitionIds}::text[]) AND "status" = 'OPEN' AND "votingMethod" = 'SIMPLE'
      ORDER BY "id" FOR SHARE
    ), valid AS (
      SELECT i.* FROM input i JOIN open ON open."id" = i.c
      WHERE EXISTS (SELECT 1 FROM "Submission" s WHERE s."id" = i.s AND s."competitionId" = i.c)
        AND (i.k IS NULL OR NOT EXISTS (SELECT 1 FROM "Vote" v WHERE v."voterId" = i.v AND v."idempotencyKey" = i.k))
    ), entries AS (
      INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "votes", "updatedAt")
      SELECT c, v, s, 1, ${now} FROM valid ORDER BY ord
      ON CONFLICT DO NOTHING
      RETURNING "competitionId", "voterId", "submissionId"
    ), chosen AS (
      -- The first of several identical ballots gets the entry; the others already voted.
      SELECT DISTINCT ON (valid.c, valid.v, valid.s) valid.* FROM valid
      JOIN entries e ON e."competitionId" = valid.c AND e."voterId" = valid.v AND e."submissionId" = valid.s
      ORDER BY valid.c, valid.v, valid.s, valid.ord
    ), votes AS (
      INSERT INTO "Vote" ("id", "competitionId", "voterId", "idempotencyKey", "requestHash", "createdAt")
      SELECT id, c, v, k, h, ${now} FROM chosen ORDER BY ord
      ON CONFLICT ("voterId", "idempotencyKey") DO NOTHING
      RETURNING *
    )
    SELECT i.ord::int AS "ord", valid.ord IS NOT NULL AS "valid",
           w."id", w."competitionId", w."voterId", w."idempotencyKey", w."requestHash", w."createdAt",
           1 / (SELECT CASE WHEN count(*) = count(x."id") THEN 1 ELSE 0 END FROM chosen ch LEFT JOIN votes x ON x."id" = ch.id) AS "whole"
    FROM input i LEFT JOIN valid ON valid.ord = i.ord LEFT JOIN votes w ON w."id" = i.id
    ORDER BY i.ord`;

  const leftovers: Pending[] = [];
  for (const row of rows) {
    const pending = ordered[row.ord - 1]!;
    const { competitionId, idempotencyKey } = pending.request;
    if (!row.valid) leftovers.push(pending);
    else if (row.id !== null) {
      const vote: Vote = {
        id: row.id,
        competitionId: row.competitionId!,
        voterId: row.voterId!,
        idempotencyKey: row.idempotencyKey,
        requestHash: row.requestHash,
        createdAt: row.createdAt!,
      };
      settled.set(pending, { outcome: { kind: 'recorded', vote, creditsRemaining: null } });
    } else if (idempotencyKey !== null) settled.set(pending, { outcome: { kind: 'key-taken' } });
    else settled.set(pending, { error: alreadyVoted(competitionId, pending.request.ballot.submissionId!) });
  }
  return leftovers;
}

async function writeSimple(
  tx: Tx,
  items: { pending: Pending; submissionId: string }[],
  settled: Map<Pending, Settled>,
): Promise<void> {
  const now = new Date();
  const entryKey = (c: string, v: string, s: string) => `${c}\u0000${v}\u0000${s}`;
  const inserted = new Set(
    (
      await tx.$queryRaw<{ competitionId: string; voterId: string; submissionId: string }[]>`
        INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "votes", "updatedAt")
        SELECT e.c, e.v, e.s, 1, ${now}
        FROM unnest(${items.map((i) => i.pending.request.competitionId)}::text[],
                    ${items.map((i) => i.pending.request.voterId)}::text[],
                    ${items.map((i) => i.submissionId)}::text[]) AS e(c, v, s)
        ON CONFLICT DO NOTHING
        RETURNING "competitionId", "voterId", "submissionId"`
    ).map((r) => entryKey(r.competitionId, r.voterId, r.submissionId)),
  );

  // The first of several identical ballots in one batch gets the entry; the others already voted.
  const accepted: { pending: Pending; submissionId: string; id: string }[] = [];
  for (const item of items) {
    const { competitionId, voterId } = item.pending.request;
    const key = entryKey(competitionId, voterId, item.submissionId);
    if (inserted.delete(key)) accepted.push({ ...item, id: randomUUID() });
    else if (item.pending.request.idempotencyKey !== null)
      settled.set(item.pending, { outcome: { kind: 'key-taken' } });
    else settled.set(item.pending, { error: alreadyVoted(competitionId, item.submissionId) });
  }
  if (accepted.length === 0) return;

  const votes = await tx.$queryRaw<Vote[]>`
    INSERT INTO "Vote" ("id", "competitionId", "voterId", "idempotencyKey", "requestHash", "createdAt")
    SELECT v.id, v.c, v.voter, v.k, v.h, ${now}
    FROM unnest(${accepted.map((a) => a.id)}::text[],
                ${accepted.map((a) => a.pending.request.competitionId)}::text[],
                ${accepted.map((a) => a.pending.request.voterId)}::text[],
                ${accepted.map((a) => a.pending.request.idempotencyKey)}::text[],
                ${accepted.map((a) => a.pending.request.requestHash)}::text[]) AS v(id, c, voter, k, h)
    ON CONFLICT ("voterId", "idempotencyKey") DO NOTHING
    RETURNING *`;
  const byId = new Map(votes.map((v) => [v.id, v]));
  const orphans: typeof accepted = [];
  for (const item of accepted) {
    const vote = byId.get(item.id);
    if (vote) settled.set(item.pending, { outcome: { kind: 'recorded', vote, creditsRemaining: null } });
    else {
      // Its key was claimed (by another request, in this batch or before): no ballot without a vote.
      orphans.push(item);
      settled.set(item.pending, { outcome: { kind: 'key-taken' } });
    }
  }
  if (orphans.length > 0) {
    await tx.$executeRaw`
      DELETE FROM "BallotEntry" b USING unnest(${orphans.map((o) => o.pending.request.competitionId)}::text[],
                                              ${orphans.map((o) => o.pending.request.voterId)}::text[],
                                              ${orphans.map((o) => o.submissionId)}::text[]) AS e(c, v, s)
      WHERE b."competitionId" = e.c AND b."voterId" = e.v AND b."submissionId" = e.s`;
  }
}

async function quadraticSpent(tx: Tx, competitionId: string, voterId: string): Promise<Map<string, number>> {
  const rows = await tx.$queryRaw<{ votes: number; submissionId: string }[]>`
    SELECT "votes", "submissionId" FROM "BallotEntry" WHERE "competitionId" = ${competitionId} AND "voterId" = ${voterId}`;
  return new Map(rows.map((r) => [r.submissionId, r.votes]));
}

/** Non-SIMPLE ballots: checks first, then the Vote row (the idempotency claim), then the ballot. */
async function writeOne(
  tx: Tx,
  request: VoteRequest,
  ballot: Exclude<Ballot, { method: 'SIMPLE' }>,
  competition: CompetitionRow,
): Promise<VoteOutcome> {
  const { competitionId, voterId } = request;
  const now = new Date();
  // One ballot change at a time per voter and competition, on every instance.
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${competitionId}), hashtext(${voterId}))`;

  let creditsRemaining: number | null = null;
  if (ballot.method === 'QUADRATIC') {
    const budget = competition.creditsPerVoter ?? 0;
    const current = await quadraticSpent(tx, competitionId, voterId);
    const before = quadraticCost(current.values());
    current.set(ballot.submissionId, ballot.votes);
    const cost = quadraticCost(current.values());
    if (cost > budget) throw budgetExceeded(cost, budget, budget - before);
    creditsRemaining = budget - cost;
  }

  const [vote] = await tx.$queryRaw<Vote[]>`
    INSERT INTO "Vote" ("id", "competitionId", "voterId", "idempotencyKey", "requestHash", "createdAt")
    VALUES (${randomUUID()}, ${competitionId}, ${voterId}, ${request.idempotencyKey}, ${request.requestHash}, ${now})
    ON CONFLICT ("voterId", "idempotencyKey") DO NOTHING
    RETURNING *`;
  if (!vote) return { kind: 'key-taken' };

  if (ballot.method === 'QUADRATIC') {
    if (ballot.votes === 0) {
      await tx.$executeRaw`DELETE FROM "BallotEntry" WHERE "competitionId" = ${competitionId} AND "voterId" = ${voterId} AND "submissionId" = ${ballot.submissionId}`;
    } else {
      await tx.$executeRaw`
        INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "votes", "updatedAt")
        VALUES (${competitionId}, ${voterId}, ${ballot.submissionId}, ${ballot.votes}, ${now})
        ON CONFLICT ("competitionId", "voterId", "submissionId") DO UPDATE SET "votes" = EXCLUDED."votes", "updatedAt" = EXCLUDED."updatedAt"`;
    }
  } else {
    // RANKED and APPROVAL: the new ballot replaces the previous one whole.
    await tx.$executeRaw`DELETE FROM "BallotEntry" WHERE "competitionId" = ${competitionId} AND "voterId" = ${voterId}`;
    const ids = ballot.method === 'RANKED' ? ballot.ranking : ballot.approvals;
    if (ids.length > 0) {
      await tx.ballotEntry.createMany({
        data: ids.map((submissionId, index) => ({
          competitionId,
          voterId,
          submissionId,
          votes: 1,
          position: ballot.method === 'RANKED' ? index + 1 : null,
          updatedAt: now,
        })),
      });
    }
  }
  return { kind: 'recorded', vote, creditsRemaining };
}
