/**
 * The front door: listeners, routing, the WebSocket upgrade and the plain HTTP
 * endpoints. It orchestrates and holds no policy of its own — every decision
 * about who may come in is the admission pipeline's.
 *
 * Upgrade path, in order: drain state → header count → route → RFC 6455
 * handshake rules → admission pipeline → service.open (backend dial) → 101 →
 * WebSocketConnection → service session. Any step may refuse with an HTTP
 * status; nothing reaches a backend before admission has passed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { Rejection, type Admission } from '../admission/types.js';
import type { AdmissionPipeline } from '../admission/pipeline.js';
import type { Channel, CloseInfo } from '../channel.js';
import type { GatehouseConfig, ListenerConfig, ServiceConfig } from '../config/schema.js';
import { BackendError } from '../errors.js';
import type { Audit } from '../observe/audit.js';
import type { Metrics } from '../observe/metrics.js';
import type { Service, ServiceSession } from '../services/types.js';
import { HandshakeError, buildUpgradeResponse, validateUpgradeRequest, type UpgradeRequestInfo } from '../websocket/handshake.js';
import { WebSocketConnection, type ConnectionOptions } from '../websocket/connection.js';
import { negotiateDeflate, type DeflateOptions } from '../websocket/permessage-deflate.js';
import { drainingRejection, writeRejection } from './respond.js';
import { connectionSettings } from '../websocket/settings.js';
import { MAX_SUBPROTOCOL_BYTES, MAX_SUBPROTOCOL_TOKENS } from '../config/policy.js';
import { splitTarget, targetPath, toAdmissionRequest } from './request.js';
import type { Router } from './router.js';
import { renderIndexPage } from './index-page.js';
import { DEMO_PATH } from '../fallback/assets.js';
import { clientAddressOf, createListenerServer, markHopped, type HoppedClient, type ListenerOptions, type ListenerServer } from './listener.js';
import { reloadListeners, type ListenerChanges } from './listener-reload.js';

/** Everything a request is handled with. Swapped as a whole on reload. */
export interface FrontDoorContext {
  config: GatehouseConfig;
  router: Router;
  pipeline: AdmissionPipeline;
  /** The pipeline without the door's counters: a live fallback session's changed credentials are checked with it. */
  credentials: AdmissionPipeline;
  services: Map<string, Service>;
  audit: Audit;
  log: Logger;
  metrics: Metrics;
}

/**
 * An HTTP endpoint of another module (fallback transport, tickets, admin).
 * Returns true when it took the request.
 */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse, ctx: FrontDoorContext) => boolean;

/** Runs on every admitted channel before the service attaches (guards, expiry). */
export type ChannelHook = (channel: Channel, admission: Admission, ctx: FrontDoorContext) => void;
/**
 * Runs when a tracked channel has ended (after its sink's onClose): the
 * counterpart of a ChannelHook that keeps per-channel state, at no cost per
 * connection (a `whenClosed` watcher is a closure and a list each). `info`
 * says how it closed, when the transport reported it.
 */
export type ChannelEndHook = (channel: Channel, info?: CloseInfo) => void;

export interface BoundAddress { host: string; port: number; tls: boolean }

const CLOSE_REASONS: Record<number, string> = {
  1002: 'protocol_error', 1003: 'unsupported_data', 1007: 'invalid_payload', 1008: 'policy_violation',
  1009: 'message_too_big', 1011: 'internal_error', 1001: 'timeout',
};

export class FrontDoor {
  private servers: ListenerServer[] = [];
  private readonly channels = new Set<Channel>();
  private readonly httpHandlers: HttpHandler[] = [];
  private readonly channelHooks: ChannelHook[] = [];
  private readonly channelEndHooks: ChannelEndHook[] = [];
  private draining = false;
  /** Handshakes under way on either transport (admission, backend dial): drain waits for their answers too. */
  private opening = 0;
  private readonly openingDone = (): void => { this.opening--; };
  private readonly optionsCache = new WeakMap<ServiceConfig, { ctx: FrontDoorContext; options: ConnectionOptions }>();
  readonly addresses: BoundAddress[] = [];

  constructor(private ctx: FrontDoorContext) {}

  get context(): FrontDoorContext { return this.ctx; }
  /** New connections use the new context; open ones keep what they were admitted with. */
  setContext(ctx: FrontDoorContext): void { this.ctx = ctx; }
  addHttpHandler(handler: HttpHandler): void { this.httpHandlers.push(handler); }
  addChannelHook(hook: ChannelHook, ended?: ChannelEndHook): void {
    this.channelHooks.push(hook);
    if (ended !== undefined) this.channelEndHooks.push(ended);
  }
  /** Only an end hook: `ended` runs when each tracked channel has ended. */
  addEndHook(ended: ChannelEndHook): void { this.channelEndHooks.push(ended); }
  /** Once drain has begun, the refusal for anything that would open a channel (another transport asks before it opens one). */
  drainingRefusal(): Rejection | undefined { return this.draining ? drainingRejection() : undefined; }
  /** A handshake of another transport (a fallback open) is under way until `work` settles. */
  trackOpening(work: Promise<unknown>): void {
    this.opening++;
    work.then(this.openingDone, this.openingDone);
  }
  /** Open channels (WebSocket and fallback), for drain and metrics. */
  get openChannels(): number { return this.channels.size; }
  /** The open channels themselves (the admin API lists and closes them). */
  get channelSet(): ReadonlySet<Channel> { return this.channels; }
  /** Drain has begun: nothing new is accepted. */
  get isDraining(): boolean { return this.draining; }

  /** Register a channel that another transport (the fallback) admitted, so drain covers it. */
  track(channel: Channel, admission: Admission): void {
    this.channels.add(channel);
    this.ctx.metrics.handshakes.inc({ service: admission.service.name, transport: channel.transport, outcome: 'accepted', reason: '' });
    for (const hook of this.channelHooks) hook(channel, admission, this.ctx);
  }

  /** A tracked channel has ended (`info`: how): runs the end hooks (once per channel). */
  untrack(channel: Channel, info?: CloseInfo): void {
    if (!this.channels.delete(channel)) return;
    for (const ended of this.channelEndHooks) {
      try {
        ended(channel, info);
      } catch (err) {
        this.ctx.log.error({ err }, 'channel end hook failed');
      }
    }
  }

  async listen(): Promise<BoundAddress[]> {
    for (const l of this.ctx.config.listen) {
      const server = this.createServer(l, this.ctx.config);
      const addr = await server.listen();
      this.servers.push(server);
      this.ctx.log.info({ host: addr.address, port: addr.port }, 'listening');
    }
    this.refreshAddresses();
    return this.addresses;
  }

  /**
   * A configuration reload's listeners (src/front/listener-reload.ts): kept
   * ones take their new settings and certificates, new ones open, removed ones
   * stop accepting — or nothing changes and a ConfigError says what needs a restart.
   */
  async reloadListeners(next: GatehouseConfig): Promise<ListenerChanges> {
    const changes = await reloadListeners(this.servers, next, this.listenerOptions(next), (l) => this.createServer(l, next));
    this.servers = changes.servers;
    this.refreshAddresses();
    return changes;
  }

  private refreshAddresses(): void {
    this.addresses.length = 0;
    for (const s of this.servers) {
      const a = s.address();
      if (a) this.addresses.push({ host: a.address, port: a.port, tls: s.config.tls !== undefined });
    }
  }

  private listenerOptions(config: GatehouseConfig): ListenerOptions {
    const ctx = this.ctx;
    return { limits: config.limits, trustedProxies: config.trusted_proxies, forwardedHeader: config.forwarded_header, audit: ctx.audit, log: ctx.log };
  }

  /**
   * One listener (plain or TLS, optionally behind the PROXY protocol) with the
   * request-head limits, TLS policy and client-address resolution of
   * src/front/listener.ts; it also answers the parser's errors (431, 408, 400).
   */
  private createServer(listener: ListenerConfig, config: GatehouseConfig): ListenerServer {
    const ls = createListenerServer(listener, (req, res) => this.onRequest(req, res), (req, socket, head) => {
      void this.onUpgrade(req, socket, head);
    }, this.listenerOptions(config));
    const server = ls.server;
    server.on('connect', (req: IncomingMessage, socket: Duplex) => {
      socket.on('error', () => socket.destroy());
      this.refuse(socket, new Rejection(405, 'method_not_allowed', 'CONNECT is not supported', { Allow: 'GET' }), req);
    });
    server.on('error', (err) => this.ctx.log.error({ err }, 'listener error'));
    return ls;
  }

  /** Refuse a handshake: audit (unless the pipeline already did), count and answer. */
  private refuse(socket: Duplex, rejection: Rejection, req: IncomingMessage, audited = false, service?: string): void {
    // (a CONNECT request is refused here too, but it was no handshake)
    if (req.method !== 'CONNECT') {
      this.ctx.metrics.handshakes.inc({ service: service ?? '', transport: 'websocket', outcome: 'refused', reason: rejection.reason });
    }
    if (!audited) {
      this.ctx.audit.reject(rejection.reason, {
        service, client: clientAddressOf(req)?.address ?? req.socket.remoteAddress, status: rejection.status, transport: 'websocket',
        origin: typeof req.headers.origin === 'string' ? req.headers.origin.slice(0, 256) : undefined,
      });
    }
    writeRejection(socket, rejection);
  }

  /**
   * Synchronous from the request to the 101 unless a step really waits (an
   * asynchronous admission check such as authentication, a backend dial):
   * only then is there an await.
   */
  private async onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', destroyOnError);
    const ctx = this.ctx;
    // Counted here rather than with a promise reaction per handshake: drain waits for it to be answered.
    this.opening++;
    try {
      if (this.draining) return this.refuse(socket, drainingRejection(), req);
      if (req.rawHeaders.length / 2 > ctx.config.limits.header_count) {
        return this.refuse(socket, new Rejection(431, 'too_many_headers', 'too many header fields'), req);
      }
      const url = req.url ?? '';
      if (!url.startsWith('/')) {
        // Absolute-form or asterisk targets are never used for routing.
        return this.refuse(socket, new Rejection(400, 'bad_request_target', 'request target must be a path'), req);
      }
      const route = ctx.router.match(req.headers.host, targetPath(url));
      if (route instanceof Rejection) return this.refuse(socket, route, req);

      let upgrade: UpgradeRequestInfo;
      let deflate: DeflateOptions | null = null;
      try {
        upgrade = validateUpgradeRequest(req, { maxProtocolBytes: MAX_SUBPROTOCOL_BYTES, maxProtocolTokens: MAX_SUBPROTOCOL_TOKENS });
      } catch (err) {
        if (err instanceof HandshakeError) {
          return this.refuse(socket, new Rejection(err.status, err.reason, err.message, err.headers), req, false, route.name);
        }
        throw err;
      }

      // permessage-deflate (RFC 7692) where the service turns it on; otherwise every offer is declined unread.
      if (route.compression !== false) deflate = negotiateDeflate(upgrade.extensions, route.compression);

      // The codec parsed Sec-WebSocket-Protocol with the admission limits: admission reuses the list.
      const decided = ctx.pipeline.decide(toAdmissionRequest(req, 'websocket', upgrade.protocols), route);
      const admission = decided instanceof Promise ? await decided : decided;
      if (admission instanceof Rejection) return this.refuse(socket, admission, req, true, route.name);
      if (socket.destroyed) { admission.release(); return; }

      const service = ctx.services.get(route.name);
      if (!service) { admission.release(); throw new Error(`service ${route.name} not built`); }
      let session: ServiceSession;
      try {
        const opened = service.open(admission, { deflate });
        session = opened instanceof Promise ? await opened : opened;
      } catch (err) {
        admission.release();
        if (err instanceof BackendError) {
          return this.refuse(socket, new Rejection(err.status, err.code.toLowerCase(), STATUS_MESSAGES[err.status] ?? 'bad gateway'), req, false, route.name);
        }
        throw err;
      }
      if (socket.destroyed) { session.abort(); admission.release(); return; }
      // Drain began while this handshake waited (authentication, the backend
      // dial): it would open after drain closed the channels it knew of.
      if (this.draining) {
        session.abort();
        admission.release();
        return this.refuse(socket, drainingRejection(), req, false, route.name);
      }

      // From here on nothing reads the request: do not keep it (headers, raw
      // headers, query) for the whole life of the connection.
      admission.request = undefined;
      const protocol = session.protocol ?? admission.protocol;
      socket.write(buildUpgradeResponse(upgrade.key, protocol, deflate !== null ? { 'Sec-WebSocket-Extensions': deflate.header } : undefined));
      if (route.compression !== false && upgrade.extensions !== undefined) {
        ctx.metrics.compressionNegotiations.inc({ service: route.name, outcome: deflate !== null ? 'accepted' : 'declined' });
      }
      const channel = this.openWebSocket(socket as Socket, head, route, admission, protocol, deflate);
      session.attach(channel);
    } catch (err) {
      ctx.log.error({ err }, 'upgrade failed');
      if (!socket.destroyed) writeRejection(socket, { status: 500, message: 'internal error', headers: {} });
    } finally {
      this.opening--;
    }
  }

  private openWebSocket(
    socket: Socket, head: Buffer, svc: ServiceConfig, admission: Admission, protocol: string, deflate: DeflateOptions | null,
  ): WebSocketConnection {
    const conn = new WebSocketConnection(socket, head, this.connectionOptions(svc), { protocol, admission, deflate });
    // The connection now handles the socket's errors. Node caches the socket's
    // addresses on first use; the admission holds what we need of them, and
    // the socket would look them up again if asked while open.
    socket.removeListener('error', destroyOnError);
    const cached = socket as Socket & { _peername?: unknown; _sockname?: unknown };
    if (cached._peername) cached._peername = null;
    if (cached._sockname) cached._sockname = null;
    this.track(conn, admission);
    return conn;
  }

  /**
   * The options of a service's WebSocket connections: one object per service
   * and context, shared by all its connections, with shared callbacks that find
   * the connection's admission through the connection (no closures per
   * connection: memory per idle connection counts).
   */
  private connectionOptions(svc: ServiceConfig): ConnectionOptions {
    const ctx = this.ctx;
    const cached = this.optionsCache.get(svc);
    if (cached !== undefined && cached.ctx === ctx) return cached.options;
    const ws = ctx.config.websocket;
    const options: ConnectionOptions = {
      role: 'server',
      ...connectionSettings(svc, ws),
      onViolation: (code, reason, conn) => {
        const admission = conn.admission as Admission;
        ctx.audit.violation(CLOSE_REASONS[code] ?? `close_${code}`, {
          service: svc.name, client: admission.client.address, origin: admission.origin,
          code, detail: reason, connection: admission.id, principal: admission.principal?.id,
        });
      },
      onClosed: (conn, info) => {
        conn.admission?.release();
        this.untrack(conn, info);
      },
    };
    this.optionsCache.set(svc, { ctx, options });
    return options;
  }

  /**
   * A request another gateway process passed on (a fallback hop, already
   * authenticated by the hop listener): handled as if it had come in here from
   * `client`, whose address and TLS the first process saw.
   */
  handleHopped(req: IncomingMessage, res: ServerResponse, client: HoppedClient): void {
    markHopped(req, client);
    this.onRequest(req, res);
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const ctx = this.ctx;
    try {
      for (const handler of this.httpHandlers) if (handler(req, res, ctx)) return;
      const url = req.url ?? '/';
      const { path } = splitTarget(url);
      if (path === '/' && ctx.config.index_page && (req.method === 'GET' || req.method === 'HEAD')) {
        const body = renderIndexPage(ctx.router.services(), { demo: ctx.config.fallback.demo_page ? DEMO_PATH : undefined });
        res.writeHead(200, {
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Length': Buffer.byteLength(body),
          'Cache-Control': 'no-store',
          'X-Content-Type-Options': 'nosniff',
          'Content-Security-Policy': "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'",
        });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      const route = url.startsWith('/') ? ctx.router.match(req.headers.host, path) : new Rejection(400, 'bad_request_target');
      if (route instanceof Rejection) {
        // Browsers ask for /favicon.ico by themselves: a 404, not an audit event.
        if (path === '/favicon.ico' && route.status === 404) return this.answer(req, res, route);
        return this.respond(req, res, route);
      }
      if (req.headers.upgrade !== undefined) {
        // An Upgrade header without "Connection: upgrade" (RFC 6455 §4.2.1 item 4).
        return this.respond(req, res, new Rejection(400, 'bad_connection', 'Connection header must contain "upgrade"'), route.name);
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        return this.respond(req, res, new Rejection(405, 'method_not_allowed', 'method not allowed', { Allow: 'GET' }), route.name);
      }
      return this.respond(req, res, new Rejection(426, 'upgrade_required', 'this is a WebSocket endpoint',
        { Upgrade: 'websocket', 'Sec-WebSocket-Version': '13' }), route.name);
    } catch (err) {
      ctx.log.error({ err }, 'request failed');
      if (!res.headersSent) { res.statusCode = 500; res.end(); } else res.destroy();
    }
  }

  private respond(req: IncomingMessage, res: ServerResponse, rejection: Rejection, service?: string): void {
    this.ctx.audit.reject(rejection.reason, { service, client: clientAddressOf(req)?.address ?? req.socket.remoteAddress, status: rejection.status, transport: 'http' });
    this.answer(req, res, rejection);
  }

  private answer(req: IncomingMessage, res: ServerResponse, rejection: Rejection): void {
    const body = `${rejection.message}\n`;
    res.writeHead(rejection.status, {
      ...rejection.headers,
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /**
   * Stop accepting, ask every open channel to close with 1001, and wait up to
   * `timeoutMs` for them to close and for the handshakes under way to be
   * answered (503 `draining` once admitted); whatever is left is dropped.
   */
  async drain(timeoutMs: number, code = 1001, reason = 'gateway shutting down'): Promise<void> {
    this.draining = true;
    const closed = Promise.all(this.servers.map((s) => s.close()));
    const channels = [...this.channels];
    const allClosed = new Promise<void>((resolve) => {
      if (this.channels.size === 0 && this.opening === 0) return resolve();
      const check = setInterval(() => {
        if (this.channels.size === 0 && this.opening === 0) { clearInterval(check); resolve(); }
      }, 20);
      check.unref();
    });
    for (const ch of channels) ch.close(code, reason);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([allClosed, new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); })]);
    clearTimeout(timer);
    for (const ch of this.channels) ch.terminate();
    for (const s of this.servers) s.server.closeAllConnections();
    await closed;
  }
}

/** Until a WebSocketConnection owns it, an upgrading socket is destroyed on error (one function for all). */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

const STATUS_MESSAGES: Record<number, string> = {
  400: 'bad request', 408: 'request timeout', 431: 'request header fields too large',
  502: 'bad gateway', 503: 'service unavailable', 504: 'gateway timeout',
};
