/**
 * One `listen` entry → one Node server (http or https) with the request-head
 * limits applied, the PROXY protocol read first where enabled, TLS contexts
 * that reload in place, and the client address resolved (trusted proxies).
 *
 * The front door calls `createListenerServer(listener, onRequest, onUpgrade, options)`
 * and then `listen()`. Before the handlers run, every request has passed the
 * limits that need no service: header bytes (431, Node's parser), header count
 * (431, counted here because Node would silently truncate), header read time
 * (408), Host present (400) and, on TLS, a Host that matches the SNI name (421).
 * A `redirect_http` listener answers everything itself with 308.
 */
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ListenerConfig } from '../config/listener.js';
import { DEFAULT_LIMITS, type LimitsConfig } from '../config/limits.js';
import { CidrSet } from '../http/cidr.js';
import type { Audit } from '../observe/audit.js';
import type { TlsInfo } from '../admitted.js';
import { resolveClientAddress, type ClientAddress, type ForwardedHeader } from './forwarded.js';
import { proxyHeaderOf, readProxyHeader } from './proxy-protocol.js';
import { TlsContexts } from './tls.js';
import { writeRejection } from './respond.js';
import { checkRequestHead } from './request-head.js';
import { hostWithoutPort } from '../http/host.js';

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface ListenerOptions {
  limits?: LimitsConfig;
  /** Root `trusted_proxies`. */
  trustedProxies?: readonly string[];
  /** Root `forwarded_header`: the one header the trusted proxies write. */
  forwardedHeader?: ForwardedHeader;
  audit?: Audit;
  log?: Logger;
}

/** At most this many addresses are warned about as possible untrusted proxies (the set is kept). */
const MAX_PROXY_WARNINGS = 16;

/** The resolved client, kept on the request itself (no WeakMap entry per request for the GC to trace). */
const kClient = Symbol('gatehouse.client');
type ScreenedRequest = IncomingMessage & { [kClient]?: ClientAddress };

/**
 * The client of a request as this listener established it (PROXY header, or a
 * trusted proxy's forwarding header, else the socket peer).
 */
export function clientAddressOf(req: IncomingMessage): ClientAddress | undefined {
  return (req as ScreenedRequest)[kClient];
}

/** How a request passed on by another gateway process (a fallback hop) came in to the first one. */
export interface HoppedClient {
  address: string;
  port: number;
  /** The client's own connection was TLS. */
  secure: boolean;
  tls?: TlsInfo;
}

const kHop = Symbol('gatehouse.hop');
type HoppedRequest = IncomingMessage & { [kHop]?: HoppedClient };

/** A hop's request is read as the client's own: its address, and its connection's TLS. */
export function markHopped(req: IncomingMessage, client: HoppedClient): void {
  (req as ScreenedRequest)[kClient] = { address: client.address, port: client.port, source: 'hop' };
  (req as HoppedRequest)[kHop] = client;
}

/** The client's connection as the first gateway process saw it, when this request is a hop. */
export function hopOf(req: IncomingMessage): HoppedClient | undefined {
  return (req as HoppedRequest)[kHop];
}

/** The socket's peer, as stated by a PROXY header when the listener reads one. */
export function socketPeer(socket: Duplex): ClientAddress {
  const s = socket as Socket;
  const proxy = proxyHeaderOf(s);
  if (proxy?.proxied && proxy.sourceAddress) {
    return { address: proxy.sourceAddress, port: proxy.sourcePort ?? 0, source: 'proxy-protocol' };
  }
  return { address: s.remoteAddress ?? '', port: s.remotePort ?? 0, source: 'socket' };
}

export class ListenerServer {
  readonly server: HttpServer | HttpsServer;
  readonly tls?: TlsContexts;
  private readonly outer?: NetServer;
  private limits: LimitsConfig;
  private trusted: CidrSet;
  /** Peers already warned about as possible untrusted proxies. */
  private readonly warnedProxies = new Set<string>();
  /** The listener's `hosts`, when it names any. */
  private hosts?: ReadonlySet<string>;

  constructor(private cfg: ListenerConfig, onRequest: RequestHandler, onUpgrade: UpgradeHandler, private options: ListenerOptions = {}) {
    const config = cfg;
    const limits = this.limits = options.limits ?? DEFAULT_LIMITS;
    this.trusted = new CidrSet(options.trustedProxies ?? []);
    if (config.hosts !== undefined) this.hosts = new Set(config.hosts);
    const httpOptions = {
      maxHeaderSize: limits.header_bytes,
      headersTimeout: limits.header_timeout,
      requestTimeout: Math.max(limits.request_timeout, limits.header_timeout),
      keepAliveTimeout: limits.keep_alive_timeout,
      // Node checks the two timeouts above on this period (default 30 s): keep it well under them.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(limits.header_timeout / 4))),
      requireHostHeader: true,
      insecureHTTPParser: false,
    };
    if (config.tls) {
      this.tls = new TlsContexts(config.tls, options.log);
      const server = createHttpsServer({ ...httpOptions, ...this.tls.serverOptions() });
      this.tls.attach(server, (socket, code) => {
        this.options.audit?.reject('tls_client_certificate', { client: socketPeer(socket).address, transport: 'tls', detail: code });
      });
      this.server = server;
    } else {
      this.server = createHttpServer(httpOptions);
    }
    // Node truncates past maxHeadersCount; keep one more than the limit so "over" is visible, then refuse.
    this.server.maxHeadersCount = limits.header_count + 1;
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.clientError(err, socket));

    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const { hsts, redirect_http: redirect } = this.cfg;
      const refusal = this.screen(req);
      if (refusal) {
        res.shouldKeepAlive = false;
        res.writeHead(refusal.status, { 'Content-Type': 'text/plain', Connection: 'close', ...refusal.headers });
        res.end(`${refusal.status} ${STATUS_CODES[refusal.status] ?? ''}\n`);
        return;
      }
      if (hsts) res.setHeader('Strict-Transport-Security', hstsValue(hsts));
      if (redirect) {
        const to = redirectLocation(req, redirect.port);
        if (!to) {
          res.writeHead(400, { Connection: 'close' }).end();
          return;
        }
        res.writeHead(308, { Location: to, 'Content-Length': '0', Connection: 'close' }).end();
        return;
      }
      onRequest(req, res);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const refusal = this.screen(req);
      if (refusal) {
        writeRejection(socket, { status: refusal.status, message: refusal.reason, headers: refusal.headers });
        return;
      }
      const redirect = this.cfg.redirect_http;
      if (redirect) {
        const to = redirectLocation(req, redirect.port);
        writeRejection(socket, to ? { status: 308, message: to, headers: { Location: to } } : { status: 400, message: 'bad Host', headers: {} });
        return;
      }
      onUpgrade(req, socket, head);
    });

    if (config.proxy_protocol) {
      const server = this.server;
      this.outer = createNetServer({ pauseOnConnect: false }, (socket) => {
        const peer = socket.remoteAddress;
        readProxyHeader(socket, limits.header_timeout, (s) => {
          server.emit('connection', s);
          // The HTTP server reads the bytes put back after the header as 'data' once flowing;
          // a TLS server reads them itself from the socket's buffer when it wraps it.
          if (!config.tls) s.resume();
        }, (reason) => {
          this.options.audit?.reject('proxy_protocol_invalid', { client: peer, transport: 'tcp', detail: reason });
        });
      });
    }
  }

  /** Start accepting; resolves with the bound address (port 0 → the chosen port). */
  listen(): Promise<AddressInfo> {
    const target = this.outer ?? this.server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      target.once('error', onError);
      target.listen(this.cfg.port, this.cfg.host, () => {
        target.removeListener('error', onError);
        resolve(target.address() as AddressInfo);
      });
    });
  }

  address(): AddressInfo | null {
    return ((this.outer ?? this.server).address() as AddressInfo | null);
  }

  get config(): ListenerConfig {
    return this.cfg;
  }

  /** Re-read the TLS certificate files. */
  reloadTls(): boolean {
    return this.tls?.reload('requested') ?? false;
  }

  /**
   * A configuration reload for this running listener (same host and port):
   * `restart` lists what cannot change without a restart (then nothing may be
   * applied); otherwise `apply` puts the new settings, limits and
   * certificates in service. Throws TlsConfigError when a certificate file of
   * `next` cannot be used.
   */
  prepareReload(next: ListenerConfig, options: ListenerOptions, where: string): { restart: string[]; apply: () => void } {
    const prev = this.cfg;
    const restart = reloadBlockers(prev, next, this.limits, options.limits ?? DEFAULT_LIMITS, where);
    const swapTls = restart.length === 0 && this.tls && next.tls ? this.tls.prepare(next.tls) : undefined;
    return {
      restart,
      apply: () => {
        this.cfg = next;
        this.options = options;
        const limits = this.limits = options.limits ?? DEFAULT_LIMITS;
        this.trusted = new CidrSet(options.trustedProxies ?? []);
        this.hosts = next.hosts !== undefined ? new Set(next.hosts) : undefined;
        this.server.headersTimeout = limits.header_timeout;
        this.server.requestTimeout = Math.max(limits.request_timeout, limits.header_timeout);
        this.server.keepAliveTimeout = limits.keep_alive_timeout;
        this.server.maxHeadersCount = limits.header_count + 1;
        swapTls?.();
      },
    };
  }

  /**
   * Stop accepting and close idle HTTP connections. Upgraded (WebSocket)
   * connections are not the server's any more; the front door drains them.
   */
  close(): Promise<void> {
    this.tls?.detach();
    const closing: Array<Promise<void>> = [];
    const closeOne = (s: NetServer): Promise<void> => new Promise((resolve) => {
      if (!s.listening) { resolve(); return; }
      s.close(() => resolve());
    });
    if (this.outer) closing.push(closeOne(this.outer));
    closing.push(closeOne(this.server));
    this.server.closeIdleConnections();
    return Promise.all(closing).then(() => undefined);
  }

  /** Limits and identity checks that need no service (src/front/request-head.ts), then SNI against Host. */
  private screen(req: IncomingMessage): { status: number; reason: string; headers: Record<string, string> } | undefined {
    const peer = socketPeer(req.socket);
    const client = resolveClientAddress(peer, req.headers, this.trusted, this.options.forwardedHeader);
    (req as ScreenedRequest)[kClient] = client;
    if (client === peer && req.headers[this.options.forwardedHeader ?? 'x-forwarded-for'] !== undefined && !this.trusted.has(peer.address)) {
      this.untrustedProxy(peer.address);
    }
    const refused = checkRequestHead(req, this.limits, this.hosts);
    if (refused) return this.refuseScreen(client, refused.status, refused.reason);
    const servername = (req.socket as TLSSocket).servername;
    if (typeof servername === 'string' && servername !== '' && req.headers.host !== undefined) {
      // Domain fronting: the certificate was chosen for one name, the request names another.
      if (hostWithoutPort(req.headers.host) !== servername.toLowerCase().replace(/\.$/, '')) return this.refuseScreen(client, 421, 'sni_host_mismatch');
    }
    return undefined;
  }

  /**
   * A peer that sends a forwarding header but is not a trusted proxy: if it is
   * your load balancer, every client behind it shares one address for every
   * per-address limit. Said once per address (a bounded set), as a warning.
   */
  private untrustedProxy(address: string): void {
    if (this.warnedProxies.has(address) || this.warnedProxies.size >= MAX_PROXY_WARNINGS) return;
    this.warnedProxies.add(address);
    this.options.log?.warn({ peer: address, header: this.options.forwardedHeader ?? 'x-forwarded-for' },
      'requests from this address carry a forwarding header, but trusted_proxies does not list it: if it is your proxy or load balancer, '
      + 'every per-address limit (handshake_rate, connections_per_address, auth failures) is shared by all the clients behind it');
  }

  private refuseScreen(client: ClientAddress, status: number, reason: string): { status: number; reason: string; headers: Record<string, string> } {
    this.options.audit?.reject(reason, { client: client.address, status, transport: 'http' });
    return { status, reason, headers: {} };
  }

  private clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const code = err.code ?? '';
    if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
      // https.Server reports TLS failures here too; there is no HTTP to answer with.
      const reason = code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'tls_handshake_timeout'
        : code === 'ERR_TLS_RENEGOTIATION_DISABLED' ? 'tls_renegotiation' : 'tls_handshake_failed';
      this.options.audit?.reject(reason, { client: socketPeer(socket).address, transport: 'tls', detail: code });
      socket.destroy();
      return;
    }
    let status = 400;
    let reason = 'bad_request';
    socket.on('error', () => socket.destroy());
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) { socket.destroy(); return; }
    if (code === 'HPE_HEADER_OVERFLOW') { status = 431; reason = 'headers_too_large'; }
    else if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') { status = 408; reason = 'header_timeout'; }
    this.options.audit?.reject(reason, { client: socketPeer(socket).address, status, transport: 'http', detail: code });
    writeRejection(socket, { status, message: STATUS_CODES[status] ?? 'bad request', headers: {} });
  }
}

export function createListenerServer(
  listener: ListenerConfig,
  onRequest: RequestHandler,
  onUpgrade: UpgradeHandler,
  options: ListenerOptions = {},
): ListenerServer {
  return new ListenerServer(listener, onRequest, onUpgrade, options);
}

/** What a running listener cannot take over from a reload: each as `key: why`. */
function reloadBlockers(prev: ListenerConfig, next: ListenerConfig, prevLimits: LimitsConfig, nextLimits: LimitsConfig, where: string): string[] {
  const out: string[] = [];
  const restart = (key: string): void => { out.push(`${key}: changed; this needs a restart`); };
  if ((prev.tls === undefined) !== (next.tls === undefined)) restart(`${where}.tls`);
  if (prev.proxy_protocol !== next.proxy_protocol) restart(`${where}.proxy_protocol`);
  if (prev.tls && next.tls) {
    if (prev.tls.client_certificate !== next.tls.client_certificate) restart(`${where}.tls.client_certificate`);
    if (prev.tls.handshake_timeout !== next.tls.handshake_timeout) restart(`${where}.tls.handshake_timeout`);
    // The SNI callback is installed only on listeners that start with SNI entries.
    if (prev.tls.sni.length === 0 && next.tls.sni.length > 0) out.push(`${where}.tls.sni: a listener started without sni entries needs a restart to get them`);
  }
  if (prevLimits.header_bytes !== nextLimits.header_bytes) restart('limits.header_bytes');
  return out;
}

function hstsValue(h: NonNullable<ListenerConfig['hsts']>): string {
  return `max-age=${h.max_age}${h.include_subdomains ? '; includeSubDomains' : ''}${h.preload ? '; preload' : ''}`;
}

function redirectLocation(req: IncomingMessage, port: number): string | undefined {
  const host = req.headers.host === undefined ? '' : hostWithoutPort(req.headers.host);
  if (!/^(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])$/.test(host)) return undefined;
  const url = req.url ?? '/';
  // Only origin-form targets: an absolute-form target must not choose where we redirect to.
  const path = url.startsWith('/') ? url : '/';
  return `https://${host}${port === 443 ? '' : `:${port}`}${path}`;
}
