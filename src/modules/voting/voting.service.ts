/**
 * Casting votes. The stored ballots (BallotEntry rows) are the truth; every tally is a recount of
 * them. A vote is one transaction: the competition row is read FOR SHARE (votes never race a
 * close), the idempotency key is claimed, and the ballot entry is written, all or nothing.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { PrismaClient, Vote } from '../../generated/prisma/client.js';
import { CompetitionStatus, VotingMethod } from '../../generated/prisma/enums.js';
import { badInput, notFound } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';
import { votingClosed } from '../competitions/competitions.errors.js';
import { alreadyVoted, idempotencyKeyReused } from './voting.errors.js';
import { buildSnapshot, readCounts, type TallyPublisher } from './voting.events.js';
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

const IDEMPOTENCY_KEY_MAX = 128;

/** Thrown inside the transaction to roll it back when a concurrent retry won the key. */
class IdempotentReplay extends Error {}

function requestHash(input: CastVoteInput): string {
  const { competitionId, submissionId, votes, ranking, approvals } = input;
  return createHash('sha256')
    .update(JSON.stringify([competitionId, submissionId ?? null, votes ?? null, ranking ?? null, approvals ?? null]))
    .digest('hex');
}

/** Rejects fields that don't belong to the competition's method, naming the field. */
function validateShape(method: VotingMethod, input: CastVoteInput): string {
  const present = (value: unknown): boolean => value !== undefined && value !== null;
  if (method === VotingMethod.SIMPLE) {
    for (const field of ['votes', 'ranking', 'approvals'] as const) {
      if (present(input[field])) throw badInput(`input.${field}`, `${field} is not used by SIMPLE voting; send submissionId only`);
    }
    if (!present(input.submissionId)) throw badInput('input.submissionId', 'submissionId is required for SIMPLE voting');
    return input.submissionId as string;
  }
  throw badInput('input.competitionId', `votingMethod ${method} is not available on this server yet`);
}

export function createVotingService(deps: { prisma: PrismaClient; tallies: TallyPublisher }) {
  const { prisma, tallies } = deps;

  async function replay(voterId: string, key: string, hash: string): Promise<CastVoteResult | null> {
    const existing = await prisma.vote.findUnique({ where: { voterId_idempotencyKey: { voterId, idempotencyKey: key } } });
    if (!existing) return null;
    if (existing.requestHash !== hash) throw idempotencyKeyReused(key);
    return { vote: existing, creditsRemaining: null };
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

      let vote: Vote;
      try {
        vote = await prisma.$transaction(async (tx) => {
          const [competition] = await tx.$queryRaw<{ status: CompetitionStatus; votingMethod: VotingMethod }[]>`
            SELECT "status", "votingMethod" FROM "Competition" WHERE "id" = ${input.competitionId} FOR SHARE`;
          if (!competition) throw notFound('Competition', input.competitionId);
          const submissionId = validateShape(competition.votingMethod, input);
          if (competition.status !== CompetitionStatus.OPEN) throw votingClosed(input.competitionId, competition.status);

          const id = randomUUID();
          const [created] = await tx.$queryRaw<Vote[]>`
            INSERT INTO "Vote" ("id", "competitionId", "voterId", "idempotencyKey", "requestHash", "createdAt")
            VALUES (${id}, ${input.competitionId}, ${voter.id}, ${key}, ${hash}, ${new Date()})
            ON CONFLICT ("voterId", "idempotencyKey") DO NOTHING
            RETURNING *`;
          if (!created) throw new IdempotentReplay();

          const entered = await tx.$queryRaw<{ submissionId: string }[]>`
            INSERT INTO "BallotEntry" ("competitionId", "voterId", "submissionId", "votes", "updatedAt")
            SELECT s."competitionId", ${voter.id}, s."id", 1, ${new Date()}
            FROM "Submission" s WHERE s."id" = ${submissionId} AND s."competitionId" = ${input.competitionId}
            ON CONFLICT DO NOTHING
            RETURNING "submissionId"`;
          if (entered.length === 0) {
            const exists = await tx.submission.count({ where: { id: submissionId, competitionId: input.competitionId } });
            if (exists === 0) throw badInput('input.submissionId', `Submission ${submissionId} is not part of competition ${input.competitionId}`);
            throw alreadyVoted(input.competitionId, submissionId);
          }
          return created;
        });
      } catch (error) {
        if (error instanceof IdempotentReplay && key !== null) {
          const previous = await replay(voter.id, key, hash);
          if (previous) return previous;
        }
        throw error;
      }
      tallies.markDirty(input.competitionId);
      return { vote, creditsRemaining: null };
    },

    /** Exact standings, recounted from the stored ballots. */
    async leaderboard(competitionId: string): Promise<TallyEntry[]> {
      const competition = await prisma.competition.findUnique({ where: { id: competitionId }, select: { id: true } });
      if (!competition) throw notFound('Competition', competitionId);
      return buildSnapshot(competitionId, await readCounts(prisma, competitionId)).entries;
    },
  };
}

export type VotingService = ReturnType<typeof createVotingService>;
