import type { Module, ModuleContext } from '../module.js';
import type { SessionsService } from '../sessions/sessions.service.js';
import { createReactionsService, type ReactionsService } from './reactions.service.js';

export function createReactionsModule(
  ctx: ModuleContext,
  deps: { sessions: SessionsService },
): Module<ReactionsService> {
  const { config, logger } = ctx;
  const reactions = createReactionsService({
    prisma: ctx.prisma,
    bus: ctx.bus,
    store: ctx.stores.reactions,
    windowMs: config.reactionWindowMs,
    resumeWindowSeconds: config.resumeWindowSeconds,
    sessionStatus: (sessionId) => deps.sessions.status(sessionId),
    onError: (message, details) => logger.error(message, details),
  });
  return { service: reactions, close: () => reactions.close() }; // pending windows are published and persisted
}
