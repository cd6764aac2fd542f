/**
 * Casting votes. The stored ballots (BallotEntry rows) are the truth; every tally is a recount of
 * them. A vote is one transaction: the competition row is read FOR SHARE (votes never race a
 * close), the voter's ballot is serialised by an advisory lock (replacing ballots and quadratic
 * budgets stay exact under concurrency), the idempotency key is claimed and the ballot written,
 * all or nothing.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Prisma, PrismaClient, Vote } from '../../generated/prisma/client.js';
import { CompetitionStatus, VotingMethod } from '../../generated/prisma/enums.js';
import { badInput, notFound } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';
import { votingClosed } from '../competitions/competitions.errors.js';
import { parseBallot, quadraticCost, type Ballot } from './ballot.js';
import { alreadyVoted, budgetExceeded, idempotencyKeyReused } from './voting.errors.js';
import { readStandings, type TallyPublisher } from './voting.events.js';
import type { TallyEntry } from './tally.js';

export interface CastVoteInput {
  competitionId: string;
  submissionId?: string | null;
  votes?: number | null;
  ranking?: readonly string[] | null;
  approvals?: readonly string[] | null;
  idempotencyKey?: string | null;
}

export interface CastVoteResult {
  vote: Vote;
  creditsRemaining: number | null;
}

type Tx = Prisma.TransactionClient;

const IDEMPOTENCY_KEY_MAX = 128;

/** Thrown inside the transaction to roll it back when a concurrent retry won the key. */
class IdempotentReplay extends Error {}

function requestHash(input: CastVoteInput): string {
  const { competitionId, submissionId, votes, ranking, approvals } = input;
  return createHash('sha256')
    .update(JSON.stringify([competitionId, submissionId ?? null, votes ?? null, ranking ?? null, approvals ?? null]))
    .digest('hex');
}

async function quadraticSpent(tx: Pick<Tx, '$queryRaw'>, competitionId: string, voterId: string, except?: string): Promise<number> {
  const rows = await tx.$queryRaw<{ votes: number; submissionId: string }[]>`
    SELECT "votes", "submissionId" FROM "BallotEntry" WHERE "competitionId" = ${competitionId} AND "voterId" = ${voterId}`;
  return quadraticCost(rows.filter((r) => r.submissionId !== except).map((r) => r.votes));
}

/** Writes the ballot action; returns creditsRemaining for QUADRATIC. */
async function applyBallot(tx: Tx, competitionId: string, voterId: string, ballot: Ballot, credits: number | null): Promise<number | null> {
  const now = new Date();
  switch (ballot.method) {
    case 'SIMPLE': {
      const entered = await tx.$executeRaw`
        INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "votes", "updatedAt")
        VALUES (${competitionId}, ${voterId}, ${ballot.submissionId}, 1, ${now})
        ON CONFLICT DO NOTHING`;
      if (entered === 0) throw alreadyVoted(competitionId, ballot.submissionId);
      return null;
    }
    case 'QUADRATIC': {
      const budget = credits ?? 0;
      const spentElsewhere = await quadraticSpent(tx, competitionId, voterId, ballot.submissionId);
      const cost = spentElsewhere + ballot.votes * ballot.votes;
      if (cost > budget) {
        const before = budget - (await quadraticSpent(tx, competitionId, voterId));
        throw budgetExceeded(cost, budget, before);
      }
      if (ballot.votes === 0) {
        await tx.$executeRaw`DELETE FROM "BallotEntry" WHERE "competitionId" = ${competitionId} AND "voterId" = ${voterId} AND "submissionId" = ${ballot.submissionId}`;
      } else {
        await tx.$executeRaw`
          INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "votes", "updatedAt")
          VALUES (${competitionId}, ${voterId}, ${ballot.submissionId}, ${ballot.votes}, ${now})
          ON CONFLICT ("competitionId", "voterId", "submissionId") DO UPDATE SET "votes" = EXCLUDED."votes", "updatedAt" = EXCLUDED."updatedAt"`;
      }
      return budget - cost;
    }
    case 'RANKED':
    case 'APPROVAL': {
      // The new ballot replaces the previous one whole.
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
      return null;
    }
  }
}

export function createVotingService(deps: { prisma: PrismaClient; tallies: TallyPublisher }) {
  const { prisma, tallies } = deps;

  async function creditsRemaining(competitionId: string, voterId: string): Promise<number | null> {
    const competition = await prisma.competition.findUnique({ where: { id: competitionId }, select: { votingMethod: true, creditsPerVoter: true } });
    if (competition?.votingMethod !== VotingMethod.QUADRATIC) return null;
    return (competition.creditsPerVoter ?? 0) - (await quadraticSpent(prisma, competitionId, voterId));
  }

  async function replay(voterId: string, key: string, hash: string): Promise<CastVoteResult | null> {
    const existing = await prisma.vote.findUnique({ where: { voterId_idempotencyKey: { voterId, idempotencyKey: key } } });
    if (!existing) return null;
    if (existing.requestHash !== hash) throw idempotencyKeyReused(key);
    return { vote: existing, creditsRemaining: await creditsRemaining(existing.competitionId, voterId) };
  }

  return {
    async castVote(voter: Viewer, input: CastVoteInput): Promise<CastVoteResult> {
      const key = input.idempotencyKey ?? null;
      if (key !== null && (key.length === 0 || key.length > IDEMPOTENCY_KEY_MAX)) {
        throw badInput('input.idempotencyKey', `idempotencyKey must be 1..${IDEMPOTENCY_KEY_MAX} characters`);
      }
      const hash = requestHash(input);
      if (key !== null) {
        const previous = await replay(voter.id, key, hash);
        if (previous) return previous;
      }

      let result: CastVoteResult;
      try {
        result = await prisma.$transaction(async (tx) => {
          const [competition] = await tx.$queryRaw<
            { status: CompetitionStatus; votingMethod: VotingMethod; creditsPerVoter: number | null }[]
          >`SELECT "status", "votingMethod", "creditsPerVoter" FROM "Competition" WHERE "id" = ${input.competitionId} FOR SHARE`;
          if (!competition) throw notFound('Competition', input.competitionId);
          const submissions = await tx.$queryRaw<{ id: string }[]>`
            SELECT "id" FROM "Submission" WHERE "competitionId" = ${input.competitionId}`;
          const ballot = parseBallot(competition.votingMethod, input, new Set(submissions.map((s) => s.id)));
          if (competition.status !== CompetitionStatus.OPEN) throw votingClosed(input.competitionId, competition.status);

          // One ballot change at a time per voter and competition, on every instance.
          await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${input.competitionId}), hashtext(${voter.id}))`;
          const [vote] = await tx.$queryRaw<Vote[]>`
            INSERT INTO "Vote" ("id", "competitionId", "voterId", "idempotencyKey", "requestHash", "createdAt")
            VALUES (${randomUUID()}, ${input.competitionId}, ${voter.id}, ${key}, ${hash}, ${new Date()})
            ON CONFLICT ("voterId", "idempotencyKey") DO NOTHING
            RETURNING *`;
          if (!vote) throw new IdempotentReplay();
          const remaining = await applyBallot(tx, input.competitionId, voter.id, ballot, competition.creditsPerVoter);
          return { vote, creditsRemaining: remaining };
        });
      } catch (error) {
        if (error instanceof IdempotentReplay && key !== null) {
          const previous = await replay(voter.id, key, hash);
          if (previous) return previous;
        }
        throw error;
      }
      tallies.markDirty(input.competitionId);
      return result;
    },

    /** Exact standings, recounted from the stored ballots. */
    async leaderboard(competitionId: string): Promise<TallyEntry[]> {
      const standings = await readStandings(prisma, competitionId, new Date());
      if (!standings) throw notFound('Competition', competitionId);
      return standings.entries;
    },
  };
}

export type VotingService = ReturnType<typeof createVotingService>;
