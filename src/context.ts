import type { YogaInitialContext } from 'graphql-yoga';
import type { PrismaClient } from './generated/prisma/client.js';
import type { Viewer } from './guards/auth.js';
import type { Caller, Guards } from './guards/guards.js';
import type { EventBus } from './realtime/event-bus.js';
import type { CompetitionsService } from './modules/competitions/competitions.service.js';
import type { UsersService } from './modules/users/users.service.js';
import type { VotingService } from './modules/voting/voting.service.js';
import type { TallyPublisher } from './modules/voting/voting.events.js';
import type { ReactionsService } from './modules/reactions/reactions.service.js';
import type { SessionsService } from './modules/sessions/sessions.service.js';
import type { OffersService } from './modules/offers/offers.service.js';
import type { InvestmentPoolService } from './modules/offers/pool.service.js';
import type { DashboardService } from './modules/dashboard/dashboard.service.js';

/** Everything a resolver may use; built once in app.ts and shared by every request. */
export interface Services {
  users: UsersService;
  competitions: CompetitionsService;
  voting: VotingService;
  tallies: TallyPublisher;
  reactions: ReactionsService;
  sessions: SessionsService;
  offers: OffersService;
  investmentPool: InvestmentPoolService;
  dashboard: DashboardService;
  /** auth → rate → fraud, in that order: `await ctx.services.guards.run(ctx, { rate, fraud })`. */
  guards: Guards;
  bus: EventBus;
}

/** Per-operation context, the same shape on HTTP, SSE and graphql-ws. */
export interface Context extends YogaInitialContext, Caller {
  /** null for anonymous callers. */
  viewer: Viewer | null;
  prisma: PrismaClient;
  services: Services;
}
