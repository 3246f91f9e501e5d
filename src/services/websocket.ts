/**
 * The `websocket` service: a ws:// or wss:// backend reached with our own
 * engine in client role. The backend is dialled and its handshake completed
 * in `open`, before the client gets its 101, so a backend that refuses,
 * answers anything but a valid 101, or fails TLS verification costs the
 * client a 502 (504 on timeout) and is never tunnelled.
 *
 * The client's offered subprotocols that the service allows are offered to
 * the backend; the backend's choice becomes the session's protocol, which the
 * front door echoes in the client's 101. Frames are relayed as they arrive;
 * without an inspector a client's binary payload is re-masked for the backend
 * in place, in one pass (see the relay), text is unmasked, UTF-8 checked and
 * masked again in place. Close codes cross in both directions; each hop
 * answers its own pings.
 *
 * permessage-deflate: when the client's leg agreed it (`compression` on the
 * service), the backend is offered the same parameters, so that a backend
 * that accepts them compatibly gets the client's compressed frames as they
 * are, and the client the backend's (see the relay); a backend that declines,
 * or answers with parameters that do not fit, gets plain or recompressed
 * frames instead. A backend is never offered compression for an
 * uncompressed client: it would cost the gateway zlib work for nothing.
 */
import { performance } from 'node:perf_hooks';
import type tls from 'node:tls';
import type { Admission } from '../admitted.js';
import type { ServiceConfig, WebSocketSettings } from '../config/schema.js';
import { connectionSettings } from '../websocket/settings.js';
import { BackendError } from '../errors.js';
import { connectWebSocket } from '../websocket/client.js';
import { HandshakeError } from '../websocket/handshake.js';
import { CLOSE_TOO_BIG } from '../websocket/constants.js';
import type { ConnectionOptions, WebSocketConnection } from '../websocket/connection.js';
import { backendTlsOptions } from './backend-tls.js';
import { LiveRelays, RelayedSession, observeBackendConnect, type BackendServiceDeps } from './backend-session.js';
import type { Opening, Service, ServiceSession } from './types.js';
import type { RelayOptions } from '../relay/relay.js';
import { backendOffer, passthroughCompatibility, type DeflateClientOffer, type DeflateOptions } from '../websocket/permessage-deflate.js';

export type WebSocketServiceConfig = Extract<ServiceConfig, { type: 'websocket' }>;

export interface WebSocketServiceDeps extends BackendServiceDeps {
  /** The gateway's per-hop keepalive and buffer settings (root `websocket:` section). */
  websocket: WebSocketSettings;
  /**
   * Headers that tell the backend who the client is (the verified identity,
   * never the client's own credentials unless configured). The auth layer
   * builds them; the composition root passes its function in.
   */
  identityHeaders?: (admission: Admission, service: ServiceConfig) => Record<string, string>;
}


/**
 * A backend connection carries the admission of the client it serves (for
 * audit lines) under this symbol: a property on the connection costs less
 * than an entry per connection in a WeakMap's table.
 */
const kClientAdmission = Symbol('gatehouse.websocket.clientAdmission');
type ServingConnection = WebSocketConnection & { [kClientAdmission]?: Admission };

export class WebSocketService implements Service {
  readonly name: string;
  private readonly tlsOptions?: tls.ConnectionOptions;
  private readonly live = new LiveRelays();
  private shuttingDown = false;
  private sharedOptions?: { ws: WebSocketSettings; options: Partial<ConnectionOptions> };

  constructor(private readonly config: WebSocketServiceConfig, private readonly deps: WebSocketServiceDeps) {
    this.name = config.name;
    const url = new URL(config.backend);
    if (url.protocol === 'wss:') {
      this.tlsOptions = backendTlsOptions(config.tls, url.hostname.replace(/^\[(.*)\]$/, '$1'), config.name);
    }
  }

  get liveConnections(): number {
    return this.live.size;
  }

  /**
   * The client's offer, in its order, narrowed to what this service lets
   * through to the backend: `backend_protocols` when set, else the service's
   * admission list `subprotocols` (issue 3), plus whatever admission chose.
   */
  protocolsToOffer(admission: Admission): string[] {
    const listed = this.config.backend_protocols ?? (this.config as { subprotocols?: string[] }).subprotocols ?? [];
    const allowed = new Set(listed);
    if (admission.protocol !== '') allowed.add(admission.protocol);
    return admission.offeredProtocols.filter((p) => allowed.has(p));
  }

  async open(admission: Admission, opening?: Opening): Promise<ServiceSession> {
    if (this.shuttingDown) throw new BackendError('GH_SERVICE_DRAINING', 503, `service ${this.name} is shutting down`);
    const cfg = this.config;
    let backend: WebSocketConnection;
    const started = performance.now();
    try {
      backend = await connectWebSocket(cfg.backend, {
        protocols: this.protocolsToOffer(admission),
        headers: this.deps.identityHeaders?.(admission, admission.service) ?? {},
        tls: this.tlsOptions,
        timeout: cfg.connect_timeout,
        connection: this.connectionOptions(),
        deflate: this.deflateOffer(opening?.deflate ?? null),
      });
      (backend as ServingConnection)[kClientAdmission] = admission;
      observeBackendConnect(this.deps, this.name, started, true);
    } catch (err) {
      observeBackendConnect(this.deps, this.name, started, false);
      // A wrong answer to the upgrade (HandshakeError: status other than 101, bad
      // Accept, unoffered subprotocol, garbage) is a 502 whose code names the
      // reason, e.g. backend_status → GH_BACKEND_STATUS (the audit reason is its lower case).
      const reason = err instanceof HandshakeError && err.reason.startsWith('backend_') ? err.reason : 'backend_handshake';
      const failure = err instanceof BackendError
        ? err
        : new BackendError(`GH_${reason.toUpperCase()}`, 502, `backend of ${this.name} failed the handshake: ${(err as Error).message}`, { cause: err });
      this.deps.metrics.inc('gatehouse_backend_failures_total', { service: this.name, code: failure.code });
      this.deps.log.warn({ connection: admission.id, service: this.name, code: failure.code, status: failure.status, cause: failure.message }, 'backend connect failed');
      throw failure;
    }
    return new WebSocketSession(backend, admission, this.deps, this.live);
  }

  /** What to offer the backend for a client leg's agreement: one offer object per agreement (they are shared). */
  private deflateOffer(clientLeg: DeflateOptions | null): DeflateClientOffer | undefined {
    const settings = this.config.compression;
    if (clientLeg === null || settings === false) return undefined;
    let offer = this.offers.get(clientLeg);
    if (offer === undefined) this.offers.set(clientLeg, (offer = backendOffer(clientLeg, settings)));
    return offer;
  }

  private readonly offers = new WeakMap<DeflateOptions, DeflateClientOffer>();

  /**
   * The backend connections' options: one object shared by all of them (the
   * client library keeps it by reference), rebuilt only if the gateway's
   * `websocket:` settings object is replaced. The violation callback finds the
   * client's admission on the backend connection: no closure per connection.
   */
  private connectionOptions(): Partial<ConnectionOptions> {
    const ws = this.deps.websocket;
    if (this.sharedOptions?.ws === ws) return this.sharedOptions.options;
    const options: Partial<ConnectionOptions> = {
      ...connectionSettings(this.config, ws),
      // The client's queue is the guard's; the backend's is bounded here.
      sendStallTimeout: this.deps.sendStallTimeout ?? 0,
      onViolation: (code, reason, conn) => {
        // The backend broke the protocol (or timed out): audited like a client would be. A message over
        // max_message (plain, or compressed and inflating past it) has a reason of its own: the limit may be the one to raise.
        const admission = (conn as ServingConnection)[kClientAdmission];
        this.deps.audit.violation(code === CLOSE_TOO_BIG ? 'backend_message_too_big' : 'backend_protocol_error', {
          service: this.name, client: admission?.client.address, connection: admission?.id, code, detail: reason,
        });
      },
    };
    this.sharedOptions = { ws, options };
    return options;
  }

  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    await this.live.drain();
  }
}

class WebSocketSession extends RelayedSession {
  constructor(backend: WebSocketConnection, admission: Admission, deps: BackendServiceDeps, live: LiveRelays) {
    super(admission, backend, deps, live);
  }

  /** The backend's choice, read from the backend connection rather than kept twice. */
  get protocol(): string {
    return (this.backend as WebSocketConnection).protocol;
  }

  /** permessage-deflate per direction, from the two connections' agreements (read once, when the relay starts). */
  get compression(): RelayOptions['compression'] {
    const clientLeg = (this.client as { deflate?: DeflateOptions | null }).deflate ?? null;
    if (clientLeg === null) return undefined;
    const backendLeg = (this.backend as WebSocketConnection).deflate;
    if (backendLeg === null) return { toBackend: 'plain', toClient: 'recompress' };
    const fits = passthroughCompatibility(clientLeg, backendLeg);
    return { toBackend: fits.toBackend ? 'pass' : 'recompress', toClient: fits.toClient ? 'pass' : 'recompress' };
  }

  abort(): void {
    this.backend.close(1001, 'client handshake failed');
  }
}
