import type { YogaInitialContext } from 'graphql-yoga';
import type { PrismaClient } from './generated/prisma/client.js';
import type { Viewer } from './guards/auth.js';
import type { EventBus } from './realtime/event-bus.js';
import type { CompetitionsService } from './modules/competitions/competitions.service.js';
import type { UsersService } from './modules/users/users.service.js';
import type { VotingService } from './modules/voting/voting.service.js';
import type { TallyPublisher } from './modules/voting/voting.events.js';

/** Everything a resolver may use; built once in app.ts and shared by every request. */
export interface Services {
  users: UsersService;
  competitions: CompetitionsService;
  voting: VotingService;
  tallies: TallyPublisher;
  bus: EventBus;
}

/** Per-operation context, the same shape on HTTP, SSE and graphql-ws. */
export interface Context extends YogaInitialContext {
  /** null for anonymous callers. */
  viewer: Viewer | null;
  prisma: PrismaClient;
  services: Services;
}
