/**
 * A fixed-bucket latency histogram: 0.1 ms buckets up to 1 s, then 1 ms buckets up to 120 s
 * (clamped). Recording is O(1) and allocation-free, so 10k subscribers x many events cost nothing.
 */
const FINE_MAX_MS = 1_000;
const FINE_STEP_MS = 0.1;
const FINE_BUCKETS = FINE_MAX_MS / FINE_STEP_MS; // 10_000
const COARSE_MAX_MS = 120_000;
const COARSE_BUCKETS = COARSE_MAX_MS - FINE_MAX_MS; // 1 ms each

export interface Percentiles {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export class Histogram {
  private readonly fine = new Float64Array(FINE_BUCKETS);
  private readonly coarse = new Float64Array(COARSE_BUCKETS + 1);
  count = 0;
  private sum = 0;
  private minValue = Number.POSITIVE_INFINITY;
  private maxValue = Number.NEGATIVE_INFINITY;

  record(ms: number): void {
    // Clocks are the same machine's, but publishedAt has 1 ms resolution: clamp tiny negatives.
    const v = ms < 0 ? 0 : ms;
    this.count += 1;
    this.sum += v;
    if (v < this.minValue) this.minValue = v;
    if (v > this.maxValue) this.maxValue = v;
    if (v < FINE_MAX_MS) this.fine[Math.floor(v / FINE_STEP_MS)]! += 1;
    else this.coarse[Math.min(COARSE_BUCKETS, Math.floor(v - FINE_MAX_MS))]! += 1;
  }

  percentile(q: number): number {
    if (this.count === 0) return Number.NaN;
    const target = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < FINE_BUCKETS; i++) {
      seen += this.fine[i]!;
      if (seen >= target) return Math.min(this.maxValue, (i + 1) * FINE_STEP_MS);
    }
    for (let i = 0; i <= COARSE_BUCKETS; i++) {
      seen += this.coarse[i]!;
      if (seen >= target) return Math.min(this.maxValue, FINE_MAX_MS + i + 1);
    }
    return this.maxValue;
  }

  summary(): Percentiles {
    const r = (x: number): number => (Number.isFinite(x) ? Math.round(x * 10) / 10 : Number.NaN);
    return {
      count: this.count,
      min: r(this.count ? this.minValue : Number.NaN),
      mean: r(this.count ? this.sum / this.count : Number.NaN),
      p50: r(this.percentile(0.5)),
      p90: r(this.percentile(0.9)),
      p99: r(this.percentile(0.99)),
      p999: r(this.percentile(0.999)),
      max: r(this.count ? this.maxValue : Number.NaN),
    };
  }
}

/**
 * Exact percentiles of `values` (nearest rank, as Histogram.percentile), in the same shape as
 * Histogram.summary(). Sorts a copy; for the vote log (at most a few hundred thousand values).
 */
export function percentiles(values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const n = sorted.length;
  const r = (x: number): number => (Number.isFinite(x) ? Math.round(x * 10) / 10 : Number.NaN);
  const at = (q: number): number => (n === 0 ? Number.NaN : sorted[Math.max(1, Math.ceil(q * n)) - 1]!);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: n,
    min: r(n ? sorted[0]! : Number.NaN),
    mean: r(n ? sum / n : Number.NaN),
    p50: r(at(0.5)),
    p90: r(at(0.9)),
    p99: r(at(0.99)),
    p999: r(at(0.999)),
    max: r(n ? sorted[n - 1]! : Number.NaN),
  };
}

export const round = (x: number, digits = 1): number => {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};
