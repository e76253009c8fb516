/** Pure statistics for the benchmarks: quantiles, medians, ratios and rounding. No I/O, no clocks. */

/** The q-quantile (0 ≤ q ≤ 1) of `xs` by linear interpolation between closest ranks; NaN when empty. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  if (q < 0 || q > 1) throw new RangeError(`quantile ${q} is outside [0, 1]`);
  const sorted = [...xs].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return a + (b - a) * (pos - lo);
}

/** The median (the 0.5-quantile, so the mean of the two middle values for an even count). */
export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** p50, p95, p99 and max of a sample. */
export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Summarizes a sample; NaN everywhere when empty. */
export function summarize(xs: readonly number[]): Summary {
  return {
    n: xs.length,
    p50: quantile(xs, 0.5),
    p95: quantile(xs, 0.95),
    p99: quantile(xs, 0.99),
    max: xs.length === 0 ? NaN : Math.max(...xs),
  };
}

/** The field-wise median of several summaries (repeated runs of one system). */
export function medianSummary(runs: readonly Summary[]): Summary {
  const field = (k: keyof Summary) => median(runs.map((r) => r[k]));
  return { n: field('n'), p50: field('p50'), p95: field('p95'), p99: field('p99'), max: field('max') };
}

/** `a / b`, NaN when `b` is 0 or either is not finite. */
export function ratio(a: number, b: number): number {
  return Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : NaN;
}

/** Rounds to `digits` decimals (NaN stays NaN). */
export function round(x: number, digits = 0): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
