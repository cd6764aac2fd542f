/**
 * The event-loop delay of a load-generator process (perf_hooks.monitorEventLoopDelay). A
 * generator whose loop stalls times its own stall into every latency it reports, so every result
 * carries this figure for each generator process and a run is flagged when it exceeds
 * GENERATOR_DELAY_LIMIT_MS at p99 (trust.ts).
 *
 * monitorEventLoopDelay records the whole interval between two firings of its `resolution` ms
 * timer (an idle loop reads ≈ resolution, not 0), so the resolution is subtracted: what is left
 * is how late the loop ran the timer.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { round } from './stats.js';

export interface LoopDelayMs {
  p50: number;
  p99: number;
  max: number;
}

export class LoopDelay {
  private histogram: IntervalHistogram | undefined;

  constructor(private readonly resolutionMs = 5) {}

  start(): this {
    this.histogram = monitorEventLoopDelay({ resolution: this.resolutionMs });
    this.histogram.enable();
    return this;
  }

  /** Stops sampling and returns the delay in ms (p50 / p99 / max, 0.1 ms precision). */
  stop(): LoopDelayMs {
    const h = this.histogram;
    if (!h) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
    h.disable();
    const ms = (ns: number): number => (h.count > 0 ? round(Math.max(0, ns / 1e6 - this.resolutionMs)) : Number.NaN);
    return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
  }
}
