import type { CompetitionsService } from '../competitions/competitions.service.js';
import type { Module, ModuleContext } from '../module.js';
import { createSessionsService, type SessionsService } from './sessions.service.js';

export function createSessionsModule(
  ctx: ModuleContext,
  deps: { competitions: CompetitionsService },
): Module<SessionsService> {
  return {
    service: createSessionsService({
      prisma: ctx.prisma,
      bus: ctx.bus,
      events: ctx.events,
      competitions: deps.competitions,
    }),
  };
}
