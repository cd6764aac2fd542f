/**
 * Casting votes. The stored ballots (BallotEntry rows) are the truth; the tallies read running
 * totals that triggers on BallotEntry keep equal to a recount of them (TallyTotal, see
 * foldTallyDeltas in voting.queries.ts), whichever statement changes a ballot. Votes are written
 * in group commits by voting.writer.ts: within its batch's transaction the competition row is read
 * FOR SHARE (votes never race a close), each voter's ballot change is serialised (replacing
 * ballots and quadratic budgets stay exact under concurrency), and the idempotency key is claimed
 * together with the ballot, all or nothing.
 */
import { createHash } from 'node:crypto';
import type { PrismaClient, Vote } from '../../generated/prisma/client.js';
import { VotingMethod } from '../../generated/prisma/enums.js';
import { AppError, badInput, notFound } from '../../errors.js';
import type { Viewer } from '../../guards/auth.js';
import { quadraticCost } from './voting.rules.js';
import { createVoteWriter, type VoteOutcome } from './voting.writer.js';
import { alreadyVoted, idempotencyKeyReused } from './voting.errors.js';
import type { TallyPublisher } from './voting.publisher.js';
import { readStandings } from './voting.queries.js';
import type { TallyEntry } from './voting.rules.js';

export interface CastVoteInput {
  competitionId: string;
  submissionId?: string | null;
  votes?: number | null;
  ranking?: readonly string[] | null;
  approvals?: readonly string[] | null;
  idempotencyKey?: string | null;
}

/**
 * A vote as the API shows it. submissionId: the submission a SIMPLE or QUADRATIC ballot action is
 * on, null for RANKED and APPROVAL (whole ballots). It is not stored: it is the request's, and an
 * idempotent replay only returns the stored vote for the same request (requestHash covers it).
 */
export type VoteView = Vote & { submissionId: string | null };

export interface CastVoteResult {
  vote: VoteView;
  creditsRemaining: number | null;
}

const IDEMPOTENCY_KEY_MAX = 128;

function requestHash(input: CastVoteInput): string {
  const { competitionId, submissionId, votes, ranking, approvals } = input;
  return createHash('sha256')
    .update(JSON.stringify([competitionId, submissionId ?? null, votes ?? null, ranking ?? null, approvals ?? null]))
    .digest('hex');
}

async function quadraticSpent(prisma: PrismaClient, competitionId: string, voterId: string): Promise<number> {
  const rows = await prisma.ballotEntry.findMany({ where: { competitionId, voterId }, select: { votes: true } });
  return quadraticCost(rows.map((r) => r.votes));
}

export function createVotingService(deps: {
  prisma: PrismaClient;
  tallies: TallyPublisher;
  writerConcurrency: number;
}) {
  const { prisma, tallies } = deps;
  const writer = createVoteWriter({
    prisma,
    concurrency: deps.writerConcurrency,
    onCommitted: (competitionIds) => competitionIds.forEach((id) => tallies.markDirty(id)),
  });

  async function creditsRemaining(competitionId: string, voterId: string): Promise<number | null> {
    const competition = await prisma.competition.findUnique({
      where: { id: competitionId },
      select: { votingMethod: true, creditsPerVoter: true },
    });
    if (competition?.votingMethod !== VotingMethod.QUADRATIC) return null;
    return (competition.creditsPerVoter ?? 0) - (await quadraticSpent(prisma, competitionId, voterId));
  }

  async function replay(
    voterId: string,
    key: string,
    hash: string,
    submissionId: string | null,
  ): Promise<CastVoteResult | null> {
    // Raw SQL: no query compilation per call on a path every retried keyed vote takes.
    const [existing] = await prisma.$queryRaw<Vote[]>`
      SELECT * FROM "Vote" WHERE "voterId" = ${voterId} AND "idempotencyKey" = ${key}`;
    if (!existing) return null;
    if (existing.requestHash !== hash) throw idempotencyKeyReused(key);
    return {
      vote: { ...existing, submissionId },
      creditsRemaining: await creditsRemaining(existing.competitionId, voterId),
    };
  }

  return {
    async castVote(voter: Viewer, input: CastVoteInput): Promise<CastVoteResult> {
      const key = input.idempotencyKey ?? null;
      if (key !== null && (key.length === 0 || key.length > IDEMPOTENCY_KEY_MAX)) {
        throw badInput('input.idempotencyKey', `idempotencyKey must be 1..${IDEMPOTENCY_KEY_MAX} characters`);
      }
      const hash = requestHash(input);
      const submissionId = input.submissionId ?? null;
      // No key lookup before writing: the batch claims the key together with the ballot and
      // reports a key that was already taken, so a first attempt (nearly every keyed vote) costs
      // no round trip of its own. A retry that the write refuses (voting closed since, budget
      // spent elsewhere, a ballot error) still gets its first result, or IDEMPOTENCY_KEY_REUSED.
      let outcome: VoteOutcome;
      try {
        outcome = await writer.write({
          voterId: voter.id,
          competitionId: input.competitionId,
          ballot: input,
          idempotencyKey: key,
          requestHash: hash,
        });
      } catch (error) {
        if (key !== null && error instanceof AppError) {
          const previous = await replay(voter.id, key, hash, submissionId);
          if (previous) return previous;
        }
        throw error;
      }
      if (outcome.kind === 'recorded')
        return { vote: { ...outcome.vote, submissionId }, creditsRemaining: outcome.creditsRemaining };
      // The key was taken by a request that committed first: the same request replays, another conflicts.
      const previous = key === null ? null : await replay(voter.id, key, hash, submissionId);
      if (previous) return previous;
      throw alreadyVoted(input.competitionId, input.submissionId ?? '');
    },

    /** Resolves once every vote accepted so far is written (shutdown). */
    drain: () => writer.drain(),

    /** Exact standings, from the running totals (one row per submission, whatever the history). */
    async leaderboard(competitionId: string): Promise<TallyEntry[]> {
      const standings = await readStandings(prisma, competitionId, new Date());
      if (!standings) throw notFound('Competition', competitionId);
      return standings.entries;
    },
  };
}

export type VotingService = ReturnType<typeof createVotingService>;
