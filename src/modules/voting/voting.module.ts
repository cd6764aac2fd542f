import type { Module, ModuleContext } from '../module.js';
import { createTallyPublisher, type TallyPublisher } from './voting.publisher.js';
import { createVotingService, type VotingService } from './voting.service.js';

export interface VotingModule extends Module<VotingService> {
  /** The live standings: flushes coalesce committed votes into one update per competition. */
  readonly tallies: TallyPublisher;
}

export function createVotingModule(ctx: ModuleContext): VotingModule {
  const { prisma, config, database, logger } = ctx;
  const tallies = createTallyPublisher({
    prisma,
    bus: ctx.bus,
    events: ctx.events,
    pacer: ctx.pacer,
    flushMs: config.tallyFlushMs,
    onError: (error, competitionId) => logger.error('tally flush failed; retrying', { competitionId, error }),
  });
  // Group commits: a few batches overlap on a PostgreSQL pool; one at a time on PGlite's one session.
  const writerConcurrency = Math.max(1, Math.min(4, database.connections >> 1));
  const voting = createVotingService({ prisma, tallies, writerConcurrency });
  // Standings owed by an instance that died inside its flush window (issue 15): every instance
  // looks for them, a few times a flush window's staleness, and flushes them (one publish wins).
  const staleMs = Math.max(2 * config.tallyFlushMs, 1_000);
  let sweeping: Promise<unknown> | undefined;
  const sweeper = setInterval(() => {
    sweeping ??= tallies
      .sweepStale(staleMs)
      .catch((error: unknown) => logger.error('stale tally sweep failed; retrying', { error }))
      .finally(() => (sweeping = undefined));
  }, staleMs);
  sweeper.unref();
  return {
    service: voting,
    tallies,
    async close() {
      clearInterval(sweeper);
      await sweeping;
      await voting.drain(); // votes in a batch are written (and answered) first
      await tallies.close(); // then every acknowledged vote still gets its broadcast
    },
  };
}
