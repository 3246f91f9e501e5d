/**
 * The gateway's metrics, exposed in the Prometheus text format (prom-client)
 * by the admin listener's `/metrics`: every family has `# HELP` and `# TYPE`,
 * the process and event-loop metrics of prom-client are included.
 *
 * Calling it: each family is a named field (`metrics.handshakes`, ...).
 * Rare events call `family.inc(labels)`; hot paths take a series once
 * (`family.series(labels)`, per service or transport) and add to its
 * `.value`. Label values come from bounded sets only — service names, reason
 * codes, close codes, config keys — never principal ids or client addresses.
 *
 * Many processes: each worker's `registries` can be read as JSON
 * (`getMetricsAsJSON`) and summed by prom-client's AggregatorRegistry; every
 * family here is a sum across workers (gauges included).
 */
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { MetricFamily, registerSampled, type Labels, type Sample, type Series } from './metric-family.js';

export type { Labels, Sample, Series } from './metric-family.js';
export { MetricFamily } from './metric-family.js';

/** Seconds: from a fast local handshake to a slow authentication server or backend. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Families that existed before this catalogue under a generic call (`inc(name, …)`): their help text. */
const HELP: Record<string, string> = {
  gatehouse_throttled_total: 'Times an open connection\'s reading was paused because the client went over a rate, by the limit',
};

let processRegistry: Registry | undefined;
/**
 * prom-client's process and Node.js metrics (CPU, memory, file descriptors,
 * event-loop lag, GC). One registry per process, made on first use: its
 * event-loop and GC observers are never stopped, so they must not be made per gateway.
 */
export function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
    // Gauges named like counters (promtool's lint refuses them); the same
    // numbers are in nodejs_active_handles, _requests and _resources by type.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      processRegistry.removeSingleMetric(name);
    }
  }
  return processRegistry;
}

export interface MetricsOptions {
  /** Include the process and Node.js metrics in `render` (default true). */
  process?: boolean;
}

export class Metrics {
  /** The gateway's own families (the process metrics are in `processMetrics()`). */
  readonly registry = new Registry();
  private readonly families = new Map<string, MetricFamily>();
  private readonly withProcess: boolean;
  private readonly keyed = new Map<string, Series>();

  // ---- admission and the front door ----
  readonly handshakes = this.counterFamily('gatehouse_handshakes_total',
    'WebSocket upgrades and fallback opens that reached a service, by service, transport, outcome (accepted, refused) and reason code (empty when accepted)',
    ['service', 'transport', 'outcome', 'reason']);
  readonly rejections = this.counterFamily('gatehouse_rejections_total',
    'Requests refused with an HTTP status (handshakes, fallback and plain HTTP requests, TLS and PROXY-protocol failures), by reason code', ['reason']);
  readonly connectionsOpen = this.gaugeFamily('gatehouse_connections_open',
    'Open client connections (WebSocket and fallback sessions, from admission to close), by service and transport', ['service', 'transport']);
  readonly handshakeSeconds = new Histogram({
    name: 'gatehouse_handshake_duration_seconds',
    help: 'Time from a handshake\'s arrival to its admission decision (authentication included), by service and transport',
    labelNames: ['service', 'transport'], buckets: LATENCY_BUCKETS, registers: [this.registry],
  });

  // ---- open connections ----
  readonly violations = this.counterFamily('gatehouse_violations_total',
    'Open connections the gateway ended for bad input or a policy, by reason code', ['reason']);
  readonly closes = this.counterFamily('gatehouse_closes_total',
    'Client connections ended, by service, close code (3xxx, 4xxx: application codes) and who closed (gateway, client, transport: the connection dropped)',
    ['service', 'code', 'closed_by']);
  readonly messages = this.counterFamily('gatehouse_messages_total',
    'Messages on client connections, by service and direction (in: from clients, out: to clients)', ['service', 'direction']);
  readonly bytes = this.counterFamily('gatehouse_bytes_total',
    'Message payload bytes on client connections, by service and direction (in: from clients, out: to clients)', ['service', 'direction']);
  readonly credentialEnds = this.counterFamily('gatehouse_credential_expiries_total',
    'Connections closed because their credential expired or was revoked, by service and reason', ['service', 'reason']);
  readonly inspectionRefusals = this.counterFamily('gatehouse_inspection_refusals_total',
    'Messages refused by a subprotocol inspector (STOMP, MQTT), by service, subprotocol and reason code', ['service', 'protocol', 'reason']);

  // ---- backends ----
  readonly backendConnectSeconds = new Histogram({
    name: 'gatehouse_backend_connect_duration_seconds',
    help: 'Time to connect to a backend (TCP, TLS and WebSocket handshake), by service and outcome (ok, error)',
    labelNames: ['service', 'outcome'], buckets: LATENCY_BUCKETS, registers: [this.registry],
  });
  readonly backendFailures = this.counterFamily('gatehouse_backend_failures_total',
    'Backend connections that failed or were lost, by service and error code', ['service', 'code']);
  // ---- compression (the process-wide zlib families are sampled: see websocket/deflate-metrics.ts) ----
  readonly compressionNegotiations = this.counterFamily('gatehouse_compression_negotiations_total',
    'WebSocket connections opened with a Sec-WebSocket-Extensions offer on a service with compression on, by service and outcome (accepted: permessage-deflate agreed; declined: no offer acceptable, the connection is uncompressed)',
    ['service', 'outcome']);
  readonly relayBytes = this.counterFamily('gatehouse_relay_bytes_total',
    'Bytes relayed between clients and backends, by service and direction (to_backend, to_client), counted when a relay ends', ['service', 'direction']);

  // ---- fallback ----
  readonly fallbackRequests = this.counterFamily('gatehouse_fallback_requests_total', 'HTTP fallback requests, by operation', ['op']);
  readonly fallbackSessions = this.gaugeFamily('gatehouse_fallback_sessions', 'Open HTTP fallback sessions, by service', ['service']);
  readonly fallbackHops = this.counterFamily('gatehouse_fallback_hops_total',
    'Fallback requests passed on to their session\'s owner, another gateway process, by outcome (passed, owner_gone, owner_unknown)', ['outcome']);

  // ---- the gateway itself ----
  readonly ready = this.gaugeFamily('gatehouse_ready', '1 while the listeners are open and the gateway is not draining, else 0', []);
  readonly adminActions = this.counterFamily('gatehouse_admin_actions_total',
    'Admin API calls, by action and outcome (ok, refused)', ['action', 'outcome']);

  constructor(options: MetricsOptions = {}) {
    this.withProcess = options.process ?? true;
  }

  /** A counter family of your own (registered once; asking again returns the same family). */
  counterFamily<L extends string>(name: string, help: string, labelNames: readonly L[]): MetricFamily<L> {
    return this.family(name, 'counter', help, labelNames);
  }

  /** A gauge family of your own. */
  gaugeFamily<L extends string>(name: string, help: string, labelNames: readonly L[]): MetricFamily<L> {
    return this.family(name, 'gauge', help, labelNames);
  }

  /**
   * A family whose series are read at every scrape, for state that a lower
   * floor keeps for the whole process (the zlib queue): `read` gives them.
   */
  sampledFamily(name: string, type: 'counter' | 'gauge', help: string, labelNames: readonly string[], read: () => Iterable<Sample>): void {
    registerSampled(this.registry, name, type, help, labelNames, read);
  }

  /** The family of that name, if any. */
  familyOf(name: string): MetricFamily | undefined {
    return this.families.get(name);
  }

  // The generic forms, by name: a family is made on first use, its label
  // names from `labels`. Prefer the named families above.

  /** Add to a counter. */
  inc(name: string, labels?: Labels, by = 1): void {
    const family = this.families.get(name) ?? this.counterFamily(name, HELP[name] ?? name, Object.keys(labels ?? {}).sort());
    family.inc(labels, by);
  }

  /** Add `delta` to a gauge. */
  gauge(name: string, labels: Labels | undefined, delta: number): void {
    const family = this.families.get(name) ?? this.gaugeFamily(name, HELP[name] ?? name, Object.keys(labels ?? {}).sort());
    family.inc(labels, delta);
  }

  /** A gauge's series as a key for `gaugeKey` (kept for callers of the earlier API; prefer `family.series`). */
  key(name: string, labels?: Labels): string {
    const k = JSON.stringify([name, labels ?? {}]);
    if (!this.keyed.has(k)) {
      const family = this.families.get(name) ?? this.gaugeFamily(name, HELP[name] ?? name, Object.keys(labels ?? {}).sort());
      this.keyed.set(k, family.series(labels));
    }
    return k;
  }

  /** Add `delta` to the series `key()` named. */
  gaugeKey(key: string, delta: number): void {
    const series = this.keyed.get(key);
    if (series === undefined) throw new Error(`no series for key ${key}`);
    series.value += delta;
  }

  /**
   * The current value of a counter or gauge: the sum of its series whose
   * labels include `labels` (0 when there is none). For tests and in-process readers.
   */
  get(name: string, labels?: Labels): number {
    return this.families.get(name)?.sum(labels) ?? 0;
  }

  /** Registries to expose, the process metrics first when included. */
  get registries(): Registry[] {
    return this.withProcess ? [processMetrics(), this.registry] : [this.registry];
  }

  /** The Prometheus text exposition of every registry. */
  async render(): Promise<string> {
    const parts = await Promise.all(this.registries.map((r) => r.metrics()));
    return parts.join('\n');
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private family<L extends string>(name: string, type: 'counter' | 'gauge', help: string, labelNames: readonly L[]): MetricFamily<L> {
    const existing = this.families.get(name);
    if (existing !== undefined) {
      if (existing.type !== type) throw new Error(`metric ${name} is a ${existing.type}`);
      return existing as unknown as MetricFamily<L>;
    }
    const family = new MetricFamily<L>(name, type, help, labelNames, this.registry);
    this.families.set(name, family as unknown as MetricFamily);
    return family;
  }
}
