import type { Module, ModuleContext } from '../module.js';
import { createMessagingService, type MessagingService } from './messaging.service.js';

export function createMessagingModule(ctx: ModuleContext): Module<MessagingService> {
  const messaging = createMessagingService({
    prisma: ctx.prisma,
    bus: ctx.bus,
    events: ctx.events,
    resumeWindowSeconds: ctx.config.resumeWindowSeconds,
    typing: ctx.stores.typing,
    onError: (error, message) => ctx.logger.error(message, { error }),
  });
  return { service: messaging, close: () => messaging.close() }; // stops typing expiry timers and sweeps
}
