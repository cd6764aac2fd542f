import type { YogaInitialContext } from 'graphql-yoga';
import type { PrismaClient } from './generated/prisma/client.js';
import type { Viewer } from './guards/auth.js';
import type { Caller, Guards } from './guards/guards.js';
import type { CursorContext } from './realtime/cursors.js';
import type { EventBus } from './realtime/event-bus.js';
import type { CompetitionsService } from './modules/competitions/competitions.service.js';
import type { UsersService } from './modules/users/users.service.js';
import type { VotingService } from './modules/voting/voting.service.js';
import type { TallyPublisher } from './modules/voting/voting.publisher.js';
import type { ReactionsService } from './modules/reactions/reactions.service.js';
import type { SessionsService } from './modules/sessions/sessions.service.js';
import type { OffersService } from './modules/offers/offers.service.js';
import type { InvestmentPoolService } from './modules/pool/pool.service.js';
import type { DashboardService } from './modules/dashboard/dashboard.service.js';
import type { AuthService } from './modules/auth/auth.service.js';
import type { UserAccess } from './guards/access.js';
import type { FraudService } from './modules/fraud/fraud.service.js';
import type { MessagingService } from './modules/messaging/messaging.service.js';
import type { NotificationsService } from './modules/notifications/notifications.service.js';
import type { ChannelsService } from './modules/channels/channels.service.js';
import type { PresenceService } from './modules/presence/presence.service.js';
import type { ServerStatsService } from './modules/ops/ops.stats.service.js';

/** Everything a resolver may use; built once in app.ts and shared by every request. */
export interface Services {
  /** Wallet sign-in and ADMIN user management. */
  auth: AuthService;
  /** Admission (revocation, server-side roles) and live access watches: see guards/access.ts. */
  access: UserAccess;
  users: UsersService;
  competitions: CompetitionsService;
  voting: VotingService;
  tallies: TallyPublisher;
  reactions: ReactionsService;
  sessions: SessionsService;
  offers: OffersService;
  investmentPool: InvestmentPoolService;
  dashboard: DashboardService;
  messaging: MessagingService;
  notifications: NotificationsService;
  channels: ChannelsService;
  /** Presence derived from connections, and follows. */
  presence: PresenceService;
  /** rate → fraud after scope-auth, run for every mutation by its `guard` declaration (src/schema/guard-plugin.ts). */
  guards: Guards;
  /** Fraud alerts and decision counts for admins (the checks themselves are the guards' fraud stage). */
  fraud: FraudService;
  bus: EventBus;
  /** The admin cluster view (serverStats): every instance's sampled health. */
  serverStats: ServerStatsService;
}

/** Per-operation context, the same shape on HTTP, SSE and graphql-ws. */
export interface Context extends YogaInitialContext, Caller, CursorContext {
  /** null for anonymous callers. */
  viewer: Viewer | null;
  prisma: PrismaClient;
  services: Services;
}
