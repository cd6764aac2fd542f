/**
 * The producer's live screen for a competition (and optionally one of its sessions): vote rate,
 * viewers, reaction rate, top movers by momentum and the leaderboard, in one read.
 */
import type { PrismaClient } from '../../generated/prisma/client.js';
import { notFound } from '../../errors.js';
import { readStandings } from '../voting/voting.queries.js';
import type { TallyEntry } from '../voting/voting.rules.js';
import type { ViewerCounter } from './dashboard.store.js';

export interface Dashboard {
  competitionId: string;
  sessionId: string | null;
  generatedAt: Date;
  totalVotes: number;
  /** Ballot actions per second over the last RATE_WINDOW_SECONDS. */
  votesPerSecond: number;
  votesLastMinute: number;
  activeViewers: number;
  /** Null without a session. */
  reactionsPerSecond: number | null;
  topMovers: TallyEntry[];
  leaderboard: TallyEntry[];
}

const RATE_WINDOW_SECONDS = 10;
const TOP_MOVERS = 3;

export function createDashboardService(deps: {
  prisma: PrismaClient;
  viewers: ViewerCounter;
  reactionsPerSecond: (sessionId: string) => Promise<number>;
}) {
  const { prisma, viewers, reactionsPerSecond } = deps;
  return {
    async snapshot(competitionId: string, sessionId: string | null): Promise<Dashboard> {
      const now = new Date();
      if (sessionId !== null) {
        const session = await prisma.eventSession.findFirst({
          where: { id: sessionId, competitionId },
          select: { id: true },
        });
        if (!session) throw notFound('Session of this competition', sessionId);
      }
      const [standings, recent, lastMinute, activeViewers, reactionRate] = await Promise.all([
        readStandings(prisma, competitionId, now),
        prisma.vote.count({
          where: { competitionId, createdAt: { gt: new Date(now.getTime() - RATE_WINDOW_SECONDS * 1000) } },
        }),
        prisma.vote.count({ where: { competitionId, createdAt: { gt: new Date(now.getTime() - 60_000) } } }),
        viewers.count(competitionId),
        sessionId === null ? Promise.resolve(null) : reactionsPerSecond(sessionId),
      ]);
      if (!standings) throw notFound('Competition', competitionId);
      const topMovers = [...standings.entries]
        .filter((e) => (e.momentum ?? 0) > 0)
        .sort((a, b) => (b.momentum ?? 0) - (a.momentum ?? 0) || (b.votesLastMinute ?? 0) - (a.votesLastMinute ?? 0))
        .slice(0, TOP_MOVERS);
      return {
        competitionId,
        sessionId,
        generatedAt: now,
        totalVotes: standings.totalVotes,
        votesPerSecond: recent / RATE_WINDOW_SECONDS,
        votesLastMinute: lastMinute,
        activeViewers,
        reactionsPerSecond: reactionRate,
        topMovers,
        leaderboard: standings.entries,
      };
    },
  };
}

export type DashboardService = ReturnType<typeof createDashboardService>;
