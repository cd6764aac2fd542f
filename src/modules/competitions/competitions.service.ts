import type { Competition, PrismaClient, Submission } from '../../generated/prisma/client.js';
import { CompetitionStatus, VotingMethod } from '../../generated/prisma/enums.js';
import { badInput, notFound } from '../../errors.js';
import { ensureTopic } from '../../realtime/sequence.js';
import { topicName } from '../../realtime/topics.js';
import { invalidTransition } from './competitions.errors.js';

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
/** Voting methods whose ballots this server counts; the others arrive with their issue. */
export const SUPPORTED_METHODS: ReadonlySet<VotingMethod> = new Set([VotingMethod.SIMPLE]);

function title(field: string, raw: string): string {
  const value = raw.trim();
  if (value.length === 0 || value.length > TITLE_MAX) throw badInput(field, `${field} must be 1..${TITLE_MAX} characters`);
  return value;
}

export function createCompetitionsService(deps: {
  prisma: PrismaClient;
  /** Told after a change that alters a competition's standings (a new zero-vote entry). */
  onStandingsChanged: (competitionId: string) => void;
}) {
  const { prisma, onStandingsChanged } = deps;

  async function require(id: string): Promise<Competition> {
    const competition = await prisma.competition.findUnique({ where: { id } });
    if (!competition) throw notFound('Competition', id);
    return competition;
  }

  /** DRAFT → OPEN → CLOSED; the status check and the write are one conditional UPDATE. */
  async function transition(id: string, from: CompetitionStatus, to: CompetitionStatus): Promise<Competition> {
    const now = new Date();
    const { count } = await prisma.competition.updateMany({
      where: { id, status: from },
      data: { status: to, ...(to === CompetitionStatus.OPEN ? { openedAt: now } : { closedAt: now }) },
    });
    const competition = await require(id);
    if (count === 0) throw invalidTransition(id, competition.status, to);
    return competition;
  }

  return {
    require,
    byId: (id: string) => prisma.competition.findUnique({ where: { id } }),

    async create(input: CreateCompetitionInput, createdById: string): Promise<Competition> {
      const name = title('input.title', input.title);
      if (!SUPPORTED_METHODS.has(input.votingMethod)) {
        throw badInput('input.votingMethod', `votingMethod ${input.votingMethod} is not available on this server yet`);
      }
      if (input.creditsPerVoter != null && input.votingMethod !== VotingMethod.QUADRATIC) {
        throw badInput('input.creditsPerVoter', 'creditsPerVoter applies to QUADRATIC competitions only');
      }
      return prisma.$transaction(async (tx) => {
        const competition = await tx.competition.create({
          data: { title: name, votingMethod: input.votingMethod, createdById },
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
        if (!founder) throw badInput('input.founderId', `No user ${input.founderId}: founders must have signed in once`);
      }
      const submission = await prisma.submission.create({
        data: { competitionId: competition.id, title: name, founderId: input.founderId ?? null },
      });
      onStandingsChanged(competition.id);
      return submission;
    },

    open: (id: string) => transition(id, CompetitionStatus.DRAFT, CompetitionStatus.OPEN),
    close: (id: string) => transition(id, CompetitionStatus.OPEN, CompetitionStatus.CLOSED),

    submissions: (competitionId: string) =>
      prisma.submission.findMany({ where: { competitionId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] }),
  };
}

export type CompetitionsService = ReturnType<typeof createCompetitionsService>;
