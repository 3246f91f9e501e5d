/**
 * What the backend services (tcp, websocket) share: their dependencies, the
 * session that joins a client to its backend link through a Relay, the set of
 * live relays a service drains on shutdown, and the audit of backend failures.
 */
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Admission } from '../admitted.js';
import type { Audit } from '../observe/audit.js';
import type { Metrics } from '../observe/metrics.js';
import type { Channel, CloseInfo } from '../channel.js';
import { RELAY_POLICY, Relay, type RelayOptions, type RelaySummary } from '../relay/relay.js';
import type { RelayEnd } from '../relay/end.js';
import { NO_INSPECTORS, type Direction, type InspectorTable, type Refusal, type Violation } from '../relay/inspector.js';
import type { ServiceSession } from './types.js';

export interface BackendServiceDeps {
  log: Logger;
  audit: Audit;
  metrics: Metrics;
  /** `limits.send_stall_timeout`: how long a backend may leave our writes unread before its link is dropped. */
  sendStallTimeout?: number;
  /** Protocol inspectors by subprotocol (src/inspect/); none: every connection is relayed as it comes. */
  inspectors?: InspectorTable;
}

/**
 * How long `shutdown` waits for backend close handshakes before dropping what
 * is left. It runs after the front door has drained the clients (within
 * `shutdown.drain_timeout`), so it is kept short: exit stays close to the drain timeout.
 */
const SHUTDOWN_GRACE_MS = 1_000;

/** The live relays of one service instance. */
export class LiveRelays {
  private readonly relays = new Set<Relay>();
  private readonly waiters = new Set<() => void>();

  get size(): number {
    return this.relays.size;
  }

  add(relay: Relay): void {
    this.relays.add(relay);
  }

  delete(relay: Relay): void {
    this.relays.delete(relay);
    if (this.relays.size === 0) for (const w of this.waiters) w();
  }

  /** Send 1001 both ways on every relay; resolve when all have ended or the grace period is over. */
  async drain(graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    for (const r of this.relays) r.goingAway();
    if (this.relays.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, graceMs);
      timer.unref();
      const waiter = (): void => done();
      this.waiters.add(waiter);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
    });
    for (const r of this.relays) r.terminate();
  }
}

/** The backend-connect histogram: `started` is the dial's performance.now(). */
export function observeBackendConnect(deps: BackendServiceDeps, service: string, started: number, ok: boolean): void {
  deps.metrics.backendConnectSeconds.observe({ service, outcome: ok ? 'ok' : 'error' }, (performance.now() - started) / 1000);
}

/** One log line per ended relay at debug level, and the byte counters. */
export function recordRelayEnd(deps: BackendServiceDeps, admission: Admission, summary: RelaySummary): void {
  const service = admission.service.name;
  deps.metrics.inc('gatehouse_relay_bytes_total', { service, direction: 'to_backend' }, summary.bytesToBackend);
  deps.metrics.inc('gatehouse_relay_bytes_total', { service, direction: 'to_client' }, summary.bytesToClient);
  deps.log.debug({
    connection: admission.id,
    service,
    client_code: summary.client?.code,
    backend_code: summary.backend?.code,
    bytes_to_backend: summary.bytesToBackend,
    bytes_to_client: summary.bytesToClient,
  }, 'relay ended');
}

/**
 * The audit line of traffic refused by an inspector or the relay — reason
 * code, the command and destination concerned, never payload. Refusals by a
 * protocol inspector are also counted in gatehouse_inspection_refusals_total
 * (bounded labels: service, subprotocol, reason). `violation` when the
 * refusal ended the connection (those are in gatehouse_violations_total too).
 */
export function auditRefusal(deps: BackendServiceDeps, admission: Admission, protocol: string, refusal: Refusal | Violation, direction: Direction, inspector: string): void {
  const service = admission.service.name;
  if (inspector !== RELAY_POLICY) deps.metrics.inspectionRefusals.inc({ service, protocol, reason: refusal.reason });
  const fields = {
    service,
    client: admission.client.address,
    origin: admission.origin,
    code: 'code' in refusal ? refusal.code : undefined,
    connection: admission.id,
    principal: admission.principal?.id,
    command: refusal.command,
    destination: refusal.destination,
    detail: refusal.detail,
    direction,
  };
  if ('code' in refusal) deps.audit.violation(refusal.reason, fields);
  else deps.audit.refusal(refusal.reason, fields);
}

/** A backend lost mid-stream (reset, vanished, or closed by us for bad data): counted and logged. */
export function recordBackendLost(deps: BackendServiceDeps, admission: Admission, info: CloseInfo): void {
  deps.metrics.inc('gatehouse_backend_failures_total', { service: admission.service.name, code: 'GH_BACKEND_LOST' });
  deps.log.warn({ connection: admission.id, service: admission.service.name, code: info.code, cause: info.reason }, 'backend connection lost mid-stream');
}

/**
 * A service session whose traffic goes through a Relay. The session is the
 * relay's options object and observer itself (methods, not closures), so an
 * idle proxied connection costs one small object here.
 */
export abstract class RelayedSession implements ServiceSession, RelayOptions {
  client!: Channel;
  private relay?: Relay;

  constructor(
    readonly admission: Admission,
    readonly backend: RelayEnd,
    protected readonly deps: BackendServiceDeps,
    private readonly live: LiveRelays,
  ) {}

  get inspectors(): InspectorTable {
    return this.deps.inspectors ?? NO_INSPECTORS;
  }

  /* What kind of backend this is: the subclasses of byte-stream backends say so (getters: nothing per connection). */
  get backendStream(): boolean {
    return false;
  }

  get binaryOnly(): boolean {
    return false;
  }

  get dropBackendWhenClientVanishes(): boolean {
    return false;
  }

  attach(channel: Channel): void {
    this.client = channel;
    const relay = new Relay(this);
    this.relay = relay;
    this.live.add(relay);
    relay.start();
  }

  abstract abort(): void;

  onViolation(violation: Violation, direction: Direction, inspector: string): void {
    auditRefusal(this.deps, this.admission, this.client.protocol, violation, direction, inspector);
  }

  onRefusal(refusal: Refusal, direction: Direction, inspector: string): void {
    auditRefusal(this.deps, this.admission, this.client.protocol, refusal, direction, inspector);
  }

  onBackendFailed(info: CloseInfo): void {
    recordBackendLost(this.deps, this.admission, info);
  }

  onEnd(summary: RelaySummary): void {
    if (this.relay) this.live.delete(this.relay);
    recordRelayEnd(this.deps, this.admission, summary);
  }
}
