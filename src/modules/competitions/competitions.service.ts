import type { Competition, Prisma, PrismaClient, Submission } from '../../generated/prisma/client.js';
import { CompetitionStatus, VotingMethod } from '../../generated/prisma/enums.js';
import { badInput, notFound } from '../../errors.js';
import { ensureTopic } from '../../realtime/sequence.js';
import { topicName } from '../../realtime/topics.js';
import { instantRunoff, type RunoffResult } from '../voting/voting.rules.js';
import { sequenceStandings } from '../voting/voting.events.js';
import type { TallyPublisher } from '../voting/voting.publisher.js';
import { invalidTransition } from './competitions.errors.js';
import { createSubmissionCache } from './competitions.cache.js';
import type { DomainEvents } from '../../domain-events.js';

/**
 * The instant-runoff over the stored ballots. Each voter's ranking is rebuilt and identical rankings
 * are counted in SQL, so the runoff walks the distinct rankings (a few hundred with a handful of
 * submissions), not a million rows through the driver.
 */
async function computeRunoff(tx: Prisma.TransactionClient, competitionId: string): Promise<RunoffResult> {
  const [submissions, rankings] = await Promise.all([
    tx.submission.findMany({ where: { competitionId }, select: { id: true } }),
    tx.$queryRaw<{ ranking: string[]; voters: number }[]>`
      SELECT ranking, count(*)::int AS voters FROM (
        SELECT array_agg("submissionId" ORDER BY "position") AS ranking FROM "BallotEntry"
        WHERE "competitionId" = ${competitionId} AND "position" IS NOT NULL
        GROUP BY "voterId") b
      GROUP BY ranking ORDER BY ranking`,
  ]);
  return instantRunoff(
    submissions.map((s) => s.id),
    rankings.map((r) => r.ranking),
    rankings.map((r) => r.voters),
  );
}

/**
 * Closing a RANKED competition reads every stored ballot once (the runoff), seconds with a
 * million of them: longer than Prisma's default 5 s interactive transaction.
 */
const TRANSITION_TIMEOUT_MS = 120_000;

export interface CreateCompetitionInput {
  title: string;
  votingMethod: VotingMethod;
  creditsPerVoter?: number | null;
}

export interface CreateSubmissionInput {
  competitionId: string;
  title: string;
  founderId?: string | null;
}

const TITLE_MAX = 200;
const MAX_CREDITS = 1_000_000;
const LIST_DEFAULT = 50;
const LIST_MAX = 100;

export interface ListCompetitionsInput {
  status?: CompetitionStatus | null;
  /** 1..100, default 50. */
  first?: number | null;
}

function title(field: string, raw: string): string {
  const value = raw.trim();
  if (value.length === 0 || value.length > TITLE_MAX)
    throw badInput(field, `${field} must be 1..${TITLE_MAX} characters`);
  return value;
}

export function createCompetitionsService(deps: {
  prisma: PrismaClient;
  /**
   * The live tallies: told after a change that alters a competition's standings (a new zero-vote
   * entry); publishes a status change's update, sequenced in the change's transaction.
   */
  tallies: Pick<TallyPublisher, 'markDirty' | 'publish'>;
  /**
   * Where a committed DRAFT → OPEN or OPEN → CLOSED is announced (activity feed, notifications):
   * recorded in the change's transaction (the outbox), delivered after the commit.
   */
  events?: Pick<DomainEvents, 'record' | 'committed'>;
}) {
  const { prisma, tallies } = deps;
  const submissions = createSubmissionCache((ids) => prisma.submission.findMany({ where: { id: { in: [...ids] } } }));

  async function require(id: string): Promise<Competition> {
    const competition = await prisma.competition.findUnique({ where: { id } });
    if (!competition) throw notFound('Competition', id);
    return competition;
  }

  /**
   * DRAFT → OPEN → CLOSED; the status check and the write are one conditional UPDATE. Closing
   * waits for votes in flight (they hold the row FOR SHARE) and, for RANKED, stores the
   * instant-runoff result computed from the final ballots in the same transaction. The status is
   * part of the live standings: their update (for a close, the final one, with every vote
   * acknowledged before it) takes its seq in this transaction and is published after the commit.
   */
  async function transition(id: string, from: CompetitionStatus, to: CompetitionStatus): Promise<Competition> {
    const now = new Date();
    const changed = await prisma.$transaction(
      async (tx) => {
        const { count } = await tx.competition.updateMany({
          where: { id, status: from },
          data: { status: to, ...(to === CompetitionStatus.OPEN ? { openedAt: now } : { closedAt: now }) },
        });
        if (count === 0) return null;
        const { title, votingMethod } = await tx.competition.findUniqueOrThrow({
          where: { id },
          select: { title: true, votingMethod: true },
        });
        if (to === CompetitionStatus.CLOSED) {
          if (votingMethod === VotingMethod.RANKED) {
            const runoff = await computeRunoff(tx, id);
            await tx.competition.update({
              where: { id },
              data: { runoffResult: runoff as unknown as Prisma.InputJsonValue },
            });
          }
        }
        // After the Competition row lock (the UPDATE above): the lock order of every tally writer.
        const standings = await sequenceStandings(tx, id, null);
        const outboxed = await deps.events?.record(tx, 'competition.statusChanged', { id, title, status: to });
        return { standings, outboxed };
      },
      { timeout: TRANSITION_TIMEOUT_MS },
    );
    const competition = await require(id);
    if (!changed) throw invalidTransition(id, competition.status, to);
    if (changed.standings.kind === 'published') tallies.publish(changed.standings.event);
    if (changed.outboxed) deps.events?.committed(changed.outboxed);
    return competition;
  }

  return {
    require,
    byId: (id: string) => prisma.competition.findUnique({ where: { id } }),

    /** Newest first (created; then id, so a page is stable); `query` adds relations to load. */
    async list(
      input: ListCompetitionsInput,
      query: Pick<Prisma.CompetitionFindManyArgs, 'include' | 'select'> = {},
    ): Promise<Competition[]> {
      const take = input.first ?? LIST_DEFAULT;
      if (!Number.isInteger(take) || take < 1 || take > LIST_MAX)
        throw badInput('first', `first must be 1..${LIST_MAX}`);
      return prisma.competition.findMany({
        ...query,
        where: input.status ? { status: input.status } : {},
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        take,
      });
    },

    /**
     * A submission by id, synchronously once cached (submissions never change): for the fields
     * that show one beside a tally entry or a vote, which must not cost a query per entry.
     */
    submission(id: string): Submission | Promise<Submission> {
      const row = submissions.get(id);
      if (!(row instanceof Promise)) return row;
      return row.then((found) => found ?? Promise.reject(notFound('Submission', id)));
    },

    async create(input: CreateCompetitionInput, createdById: string): Promise<Competition> {
      const name = title('input.title', input.title);
      const quadratic = input.votingMethod === VotingMethod.QUADRATIC;
      if (input.creditsPerVoter != null && !quadratic) {
        throw badInput('input.creditsPerVoter', 'creditsPerVoter applies to QUADRATIC competitions only');
      }
      if (
        quadratic &&
        (input.creditsPerVoter == null || input.creditsPerVoter < 1 || input.creditsPerVoter > MAX_CREDITS)
      ) {
        throw badInput(
          'input.creditsPerVoter',
          `QUADRATIC competitions need creditsPerVoter between 1 and ${MAX_CREDITS}`,
        );
      }
      return prisma.$transaction(async (tx) => {
        const competition = await tx.competition.create({
          data: {
            title: name,
            votingMethod: input.votingMethod,
            createdById,
            creditsPerVoter: input.creditsPerVoter ?? null,
          },
        });
        await ensureTopic(tx, topicName('tally', competition.id));
        return competition;
      });
    },

    async addSubmission(input: CreateSubmissionInput): Promise<Submission> {
      const name = title('input.title', input.title);
      const competition = await require(input.competitionId);
      if (competition.status === CompetitionStatus.CLOSED) {
        throw invalidTransition(competition.id, competition.status, 'adding submissions');
      }
      if (input.founderId != null) {
        const founder = await prisma.user.findUnique({ where: { id: input.founderId }, select: { id: true } });
        if (!founder)
          throw badInput('input.founderId', `No user ${input.founderId}: founders must have signed in once`);
      }
      const submission = await prisma.submission.create({
        data: { competitionId: competition.id, title: name, founderId: input.founderId ?? null },
      });
      tallies.markDirty(competition.id);
      return submission;
    },

    open: (id: string) => transition(id, CompetitionStatus.DRAFT, CompetitionStatus.OPEN),
    close: (id: string) => transition(id, CompetitionStatus.OPEN, CompetitionStatus.CLOSED),

    submissions: (competitionId: string) =>
      prisma.submission.findMany({ where: { competitionId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
  };
}

export type CompetitionsService = ReturnType<typeof createCompetitionsService>;
