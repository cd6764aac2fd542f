import type { Module, ModuleContext } from '../module.js';
import { createOffersService, type OffersService } from './offers.service.js';

export function createOffersModule(ctx: ModuleContext): Module<OffersService> {
  const { prisma, bus, config, logger } = ctx;
  const offers = createOffersService({
    prisma,
    bus,
    events: ctx.events,
    resumeWindowSeconds: config.resumeWindowSeconds,
    minExpirySeconds: config.offerMinExpirySeconds,
    sweepIntervalMs: 1_000, // persists and publishes EXPIRED offers; every instance sweeps, each row once
    onError: (error) => logger.error('offer expiry sweep failed; retrying', { error }),
  });
  return { service: offers, close: () => offers.close() };
}
