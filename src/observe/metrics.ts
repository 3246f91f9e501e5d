/**
 * In-process counters and gauges, exposed in Prometheus text format by the
 * admin endpoint. Deliberately tiny: a Map of numbers, labels folded into the key.
 */
export class Metrics {
  private readonly counters = new Map<string, number>();
  private readonly gauges = new Map<string, number>();

  inc(name: string, labels?: Record<string, string>, by = 1): void {
    const key = metricKey(name, labels);
    this.counters.set(key, (this.counters.get(key) ?? 0) + by);
  }

  gauge(name: string, labels: Record<string, string> | undefined, delta: number): void {
    const key = metricKey(name, labels);
    this.gauges.set(key, (this.gauges.get(key) ?? 0) + delta);
  }

  /**
   * The key of a series, for the hot paths: compute it once (per service,
   * per transport) and pass it to `gaugeKey`, instead of folding labels per call.
   */
  key(name: string, labels?: Record<string, string>): string {
    return metricKey(name, labels);
  }

  /** `gauge` with a key from `key()`. */
  gaugeKey(key: string, delta: number): void {
    this.gauges.set(key, (this.gauges.get(key) ?? 0) + delta);
  }

  get(name: string, labels?: Record<string, string>): number {
    const key = metricKey(name, labels);
    return this.counters.get(key) ?? this.gauges.get(key) ?? 0;
  }

  /** Prometheus exposition format. */
  render(): string {
    const lines: string[] = [];
    for (const [k, v] of this.counters) lines.push(`${k} ${v}`);
    for (const [k, v] of this.gauges) lines.push(`${k} ${v}`);
    return lines.sort().join('\n') + '\n';
  }
}

function metricKey(name: string, labels?: Record<string, string>): string {
  if (!labels) return name;
  const parts = Object.keys(labels).sort().map((k) => `${k}="${labels[k].replace(/["\\\n]/g, '_')}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}
