/** Small statistics helpers shared by the suites and the report. */

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Scale of the load generator's log histogram: bucket i ≈ exp(i / scale) µs. */
export const HIST_SCALE = 100;

/** Merge sparse histograms ([[bucket, count], ...]) into one Map. */
export function mergeHists(hists) {
  const merged = new Map();
  for (const h of hists) for (const [i, n] of h) merged.set(i, (merged.get(i) ?? 0) + n);
  return merged;
}

/** The q-quantile (0..1) in microseconds of a merged histogram; NaN when empty. */
export function histQuantile(merged, q) {
  const keys = [...merged.keys()].sort((a, b) => a - b);
  let total = 0;
  for (const k of keys) total += merged.get(k);
  if (total === 0) return NaN;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (const k of keys) {
    seen += merged.get(k);
    if (seen >= rank) return Math.exp(k / HIST_SCALE);
  }
  return Math.exp(keys[keys.length - 1] / HIST_SCALE);
}

export function histCount(merged) {
  let total = 0;
  for (const n of merged.values()) total += n;
  return total;
}
