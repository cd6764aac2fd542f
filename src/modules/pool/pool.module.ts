import type { Module, ModuleContext } from '../module.js';
import { createInvestmentPoolService, type InvestmentPoolService } from './pool.service.js';

export function createPoolModule(ctx: ModuleContext): Module<InvestmentPoolService> {
  return { service: createInvestmentPoolService({ prisma: ctx.prisma, bus: ctx.bus }) };
}
