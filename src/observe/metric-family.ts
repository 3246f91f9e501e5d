/**
 * A counter or gauge family kept as plain numbers, one per label set, and
 * exposed through a prom-client metric that reads them at scrape time.
 *
 * Why not prom-client's `inc(labels)` directly: it hashes the labels on every
 * call. Here a caller on a hot path asks for its series once (`series(...)`)
 * and adds to `.value` — an integer add per event, nothing else; the registry
 * copies the numbers when Prometheus scrapes. Rare events may call `inc`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export type Labels = Readonly<Record<string, string>>;

/** One series of a family: the hot path adds to `value`. */
export interface Series { value: number }

interface Entry { labels: Labels; series: Series }

/** One series as read at scrape time. */
export interface Sample { labels: Labels; value: number }

/**
 * A prom-client counter or gauge on `registry` whose series `read` gives at
 * every scrape (replacing one of the same name already there).
 */
export function registerSampled(
  registry: Registry, name: string, type: 'counter' | 'gauge', help: string, labelNames: readonly string[], read: () => Iterable<Sample>,
): void {
  if (registry.getSingleMetric(name) !== undefined) registry.removeSingleMetric(name);
  const common = { name, help, labelNames: [...labelNames], registers: [registry] };
  if (type === 'counter') {
    new Counter({ ...common, collect(this: Counter) {
      this.reset();
      for (const e of read()) this.inc(e.labels, e.value);
    } });
  } else {
    new Gauge({ ...common, collect(this: Gauge) {
      this.reset();
      for (const e of read()) this.set(e.labels, e.value);
    } });
  }
}

export class MetricFamily<L extends string = string> {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly name: string,
    readonly type: 'counter' | 'gauge',
    readonly help: string,
    readonly labelNames: readonly L[],
    registry: Registry,
  ) {
    registerSampled(registry, name, type, help, labelNames, () => this.all());
  }

  /**
   * The series of these labels, made on first use. Keep it (per service, per
   * transport) and add to its `value`: that is the hot-path form.
   * Label values must come from a bounded set (config names, reason codes),
   * never from a client (ids, addresses, paths).
   */
  series(labels: Readonly<Record<L, string>> | Labels = {}): Series {
    const key = this.keyOf(labels);
    let e = this.entries.get(key);
    if (e === undefined) {
      const own: Record<string, string> = {};
      for (const n of this.labelNames) own[n] = labels[n as keyof typeof labels] ?? '';
      e = { labels: own, series: { value: 0 } };
      this.entries.set(key, e);
    }
    return e.series;
  }

  /** Add `by` to a series (counters: by ≥ 0). For events that are not on a hot path. */
  inc(labels?: Readonly<Record<L, string>> | Labels, by = 1): void {
    this.series(labels).value += by;
  }

  /** The sum of the series whose labels include `match` (all series without it). */
  sum(match: Labels = {}): number {
    let total = 0;
    const keys = Object.keys(match);
    for (const e of this.entries.values()) {
      if (keys.every((k) => e.labels[k] === match[k])) total += e.series.value;
    }
    return total;
  }

  /** Every series with its labels, for readers in process (the dashboard's numbers come from the same place). */
  *all(): IterableIterator<{ labels: Labels; value: number }> {
    for (const e of this.entries.values()) yield { labels: e.labels, value: e.series.value };
  }

  private keyOf(labels: Labels): string {
    for (const k of Object.keys(labels)) {
      if (!(this.labelNames as readonly string[]).includes(k)) throw new Error(`metric ${this.name} has no label "${k}"`);
    }
    if (this.labelNames.length === 0) return '';
    return JSON.stringify(this.labelNames.map((n) => labels[n as keyof typeof labels] ?? ''));
  }
}
