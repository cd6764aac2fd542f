import type { Module, ModuleContext } from '../module.js';
import type { TallyPublisher } from '../voting/voting.publisher.js';
import { createCompetitionsService, type CompetitionsService } from './competitions.service.js';

export function createCompetitionsModule(
  ctx: ModuleContext,
  deps: { tallies: TallyPublisher },
): Module<CompetitionsService> {
  return { service: createCompetitionsService({ prisma: ctx.prisma, tallies: deps.tallies, events: ctx.events }) };
}
