import type { Module, ModuleContext } from '../module.js';
import { createActivityFeed } from './channels.triggers.js';
import { createChannelsService, type ChannelsService } from './channels.service.js';

/** Channels, and the competition activity feed written into them from other modules' commits. */
export function createChannelsModule(ctx: ModuleContext): Module<ChannelsService> {
  const { prisma, bus, events, logger } = ctx;
  const channels = createChannelsService({ prisma, bus });
  const activity = createActivityFeed({
    prisma,
    channels,
    events,
    onError: (error, details) => logger.error('activity feed publish failed', { ...details, error }),
  });
  return { service: channels, close: () => activity.settle() };
}
