/** Small, dependency-free statistics for the benchmark's samples. */

/** The p-th percentile (0-100) by linear interpolation between closest ranks. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low] as number;
  const highValue = sorted[high] as number;
  return lowValue + (highValue - lowValue) * (rank - low);
}

export const median = (values: readonly number[]): number => percentile(values, 50);

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export function spread(values: readonly number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** Element-wise combination of two per-round series (paired by round), then their median. */
export function pairedMedian(
  a: readonly number[],
  b: readonly number[],
  combine: (x: number, y: number) => number,
): number {
  const n = Math.min(a.length, b.length);
  const paired: number[] = [];
  for (let i = 0; i < n; i++) paired.push(combine(a[i] as number, b[i] as number));
  return median(paired);
}
