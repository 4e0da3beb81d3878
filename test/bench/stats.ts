/** Small numeric helpers shared by the scenarios. */

/** Nearest-rank percentile (p in 0..100) of an unsorted list; null when empty. */
export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? null;
}

export function spread(values: number[]): { min: number | null; p50: number | null; max: number | null } {
  return { min: round(percentile(values, 0)), p50: round(percentile(values, 50)), max: round(percentile(values, 100)) };
}

export function round(value: number | null | undefined, digits = 1): number | null {
  if (value === null || value === undefined || !Number.isFinite(value)) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function ratio(numerator: number | null | undefined, denominator: number | null | undefined, digits = 2): number | null {
  if (numerator === null || numerator === undefined || !denominator) return null;
  return round(numerator / denominator, digits);
}

export const MiB = 1024 ** 2;

export const mbPerSecond = (bytes: number, ms: number) => round(bytes / MiB / (ms / 1000));
