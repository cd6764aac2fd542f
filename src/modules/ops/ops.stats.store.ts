/**
 * Where instances leave their latest stats sample for each other (ops.stats.service.ts): in memory for a
 * single process, a Redis hash shared by every instance otherwise (chosen in app.ts).
 */
import type { InstanceStats } from './ops.stats.service.js';

export interface ServerStatsStore {
  /** Replaces this instance's sample; it counts as gone `ttlMs` from now unless replaced. */
  put(stats: InstanceStats, ttlMs: number): Promise<void>;
  /** Every sample not expired. */
  list(): Promise<InstanceStats[]>;
  /** This instance stops (shutdown): its sample goes at once. */
  remove(instanceId: string): Promise<void>;
}
