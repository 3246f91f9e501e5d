/**
 * The admin listener of `workers: N`, in the primary: one port for the whole
 * machine. `/metrics` is every worker's families summed (prom-client's
 * AggregatorRegistry), with the primary's own process metrics and admin
 * counters, so dashboards and alerts read as for one process;
 * `/metrics/workers` has the same families with a `worker` label, one series
 * per worker. Reload and drain act on every worker; publish goes out through
 * one worker's bus, which reaches all. Listing and closing connections is
 * each worker's (not offered here: the list is empty).
 */
import { AggregatorRegistry } from 'prom-client';
import type { Logger } from 'pino';
import { AdminServer } from './admin/server.js';
import type { PublishResult } from './admin/publish.js';
import type { AdminConfig } from './config/admin.js';
import { Audit } from './observe/audit.js';
import { Metrics } from './observe/metrics.js';
import type { Primary } from './cluster/primary.js';

/** A registry's `getMetricsAsJSON()`: families, each with its series' values and labels. */
type Json = Array<{ name: string; values?: Array<{ value: number; labels: Record<string, string | number> }> }>;

/** The primary's metrics: its own, and the workers' summed. */
class ClusterMetrics extends Metrics {
  constructor(private readonly primary: Primary) {
    super();
  }

  override async render(): Promise<string> {
    const workers = await this.workerJson();
    const summed = AggregatorRegistry.aggregate(workers.map((w) => w.json));
    const own = await this.registry.metrics();
    return `${await summed.metrics()}\n${own}`;
  }

  async byWorker(): Promise<string> {
    const workers = await this.workerJson();
    const labelled = workers.map(({ worker, json }) => json.map((m) => ({
      ...m,
      values: (m.values ?? []).map((v: { value: number; labels: Record<string, string | number> }) => ({ ...v, labels: { ...v.labels, worker } })),
    })));
    return AggregatorRegistry.aggregate(labelled).metrics();
  }

  private async workerJson(): Promise<Array<{ worker: number; json: Json }>> {
    const answers = await this.primary.askAll('metrics');
    return answers.flatMap((a) => (Array.isArray(a.value) ? [{ worker: a.worker, json: a.value as Json }] : []));
  }
}

export function primaryAdmin(config: AdminConfig, primary: Primary, log: Logger, control: { reload(): void; drain(): void }): AdminServer {
  const metrics = new ClusterMetrics(primary);
  const audit = new Audit(log, metrics, 20);
  return new AdminServer(config, {
    metrics,
    log,
    channels: () => [],
    traffic: () => undefined,
    readiness: () => ({ ready: true }),
    reload: async () => {
      control.reload();
      return { ok: true, services: [] };
    },
    drain: () => control.drain(),
    metricsByWorker: () => metrics.byWorker(),
    publish: async (service, channel, data) => ((await primary.askOne('publish', [service, channel, data])) as PublishResult | undefined) ?? 'unavailable',
  }, audit);
}
