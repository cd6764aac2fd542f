/**
 * What every domain module's factory (`create<M>Module` in `<m>.module.ts`) receives and returns.
 * A factory builds the module's service from the shared infrastructure and the services of the
 * modules it depends on (passed explicitly, so the dependency order is visible in app.ts), and
 * hands back how it stops: app.ts registers that on the shutdown stack as the module is created.
 */
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../config.js';
import type { DomainEvents } from '../domain-events.js';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { Database } from '../infra/database.js';
import type { Logger } from '../infra/logger.js';
import type { EventBus } from '../realtime/event-bus.js';
import type { FanoutPacer } from '../realtime/fanout-pacer.js';
import type { Stores } from '../stores.js';

export interface ModuleContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly database: Database;
  readonly prisma: PrismaClient;
  /** Realtime topics, across instances when Redis is configured. */
  readonly bus: EventBus;
  /** This instance's fan-out load: publishers of snapshot topics pace on it (realtime/fanout-pacer.ts). */
  readonly pacer: FanoutPacer;
  /** Cross-module reactions inside this process (src/domain-events.ts). */
  readonly events: DomainEvents;
  /** Memory or Redis, decided once (src/stores.ts). */
  readonly stores: Stores;
  /** This process among the instances sharing Redis. */
  readonly instanceId: string;
  /**
   * The app's clock (epoch ms): Date.now, unless createApp was given another (tests move time on
   * instead of waiting for it). Modules whose rules depend on the time read it from here.
   */
  readonly now: () => number;
}

export interface Module<S> {
  readonly service: S;
  /** Its hooks in the one Yoga pipeline, if any (app.ts orders them). */
  readonly plugins?: readonly Plugin[];
  /** Finishes its work in flight and stops its timers; run at shutdown, in reverse creation order. */
  close?(): Promise<void>;
}
