import type { Module, ModuleContext } from '../module.js';
import type { ReactionsService } from '../reactions/reactions.service.js';
import { useTallyViewerCount } from './dashboard.plugin.js';
import { createDashboardService, type DashboardService } from './dashboard.service.js';

/** The organiser's dashboard; its plugin counts live tally watchers (every transport). */
export function createDashboardModule(
  ctx: ModuleContext,
  deps: { reactions: ReactionsService },
): Module<DashboardService> {
  const viewers = ctx.stores.viewers;
  return {
    service: createDashboardService({
      prisma: ctx.prisma,
      viewers,
      reactionsPerSecond: (sessionId) => deps.reactions.reactionsPerSecond(sessionId),
    }),
    plugins: [useTallyViewerCount(viewers)],
  };
}
