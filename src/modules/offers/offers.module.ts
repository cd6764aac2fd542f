import type { Module, ModuleContext } from '../module.js';
import { createOffersService, type OffersService } from './offers.service.js';
import { createInvestmentPoolService, type InvestmentPoolService } from './pool.service.js';

export interface OffersModule extends Module<OffersService> {
  /** The investment pool: pledges beside the judges' offers, on the same sessions. */
  readonly pool: InvestmentPoolService;
}

export function createOffersModule(ctx: ModuleContext): OffersModule {
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
  return { service: offers, pool: createInvestmentPoolService({ prisma, bus }), close: () => offers.close() };
}
