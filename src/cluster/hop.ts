/**
 * Fallback hops: a fallback request that reaches a gateway process other than
 * its session's owner (round robin, no stickiness) is passed on, as it came,
 * to the owner's hop listener; the answer (a stream, too) comes back through
 * the same process. The owner then handles the request exactly as if it had
 * received it: the session's checks (origin, credentials, sequence numbers)
 * run where the session lives. A session id names its owner (`<random>.<owner>`).
 *
 * The hop listener is not a client listener: it takes only requests signed
 * with the cluster's secret (HMAC-SHA256 over the time, method, target and
 * the client as the first gateway resolved it), at most 30 s old. Bodies are
 * not signed: keep hop traffic on a private network (see docs/scaling.md).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TlsInfo } from '../admitted.js';

export const HOP_HEADER = 'gatehouse-hop';
export const HOP_CLIENT_HEADER = 'gatehouse-hop-client';
const MAX_AGE_MS = 30_000;

/** The client as the first gateway saw it: what admission and the origin policy read. */
export interface HopClient {
  address: string;
  port: number;
  /** The client's connection was TLS. */
  secure: boolean;
  tls?: TlsInfo;
}

/** Headers that belong to one connection, not to the request (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

export class HopSigner {
  constructor(private readonly secret: string) {}

  sign(method: string, target: string, client: string, now = Date.now()): string {
    return `${now}.${this.mac(now, method, target, client)}`;
  }

  /** True when `header` signs this request within MAX_AGE_MS. */
  verify(header: string | undefined, method: string, target: string, client: string, now = Date.now()): boolean {
    const m = /^(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(header ?? '');
    if (!m) return false;
    const at = Number(m[1]);
    if (Math.abs(now - at) > MAX_AGE_MS) return false;
    const expected = Buffer.from(this.mac(at, method, target, client));
    const given = Buffer.from(m[2]);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  private mac(at: number, method: string, target: string, client: string): string {
    return createHmac('sha256', this.secret).update(`${at}\n${method}\n${target}\n${client}`).digest('base64url');
  }
}

export type HopOutcome = 'passed' | 'unreachable' | 'broken';

/** Passes requests on to their owners (keep-alive connections, no Nagle: stream frames go on at once). */
export class HopForwarder {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 });

  constructor(private readonly signer: HopSigner) {}

  /**
   * Sends `req` to the owner at `base` (http://host:port) and its answer back
   * on `res`. Resolves 'passed' once the owner answered; before that (nothing
   * has been sent to the client then) 'unreachable' when no connection to the
   * owner could be made — it is gone — and 'broken' when a connection was made
   * and failed: a kept-alive socket the owner had just closed (Node's agent
   * reuses it as the owner's idle timer ends it), a reset — not proof that the
   * owner is gone, and the client may try again.
   */
  forward(req: IncomingMessage, res: ServerResponse, base: string, client: HopClient): Promise<HopOutcome> {
    const target = req.url ?? '/';
    const meta = Buffer.from(JSON.stringify(client)).toString('base64url');
    const headers: IncomingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && !k.startsWith(HOP_HEADER)) headers[k] = v;
    headers[HOP_HEADER] = this.signer.sign(req.method ?? 'POST', target, meta);
    headers[HOP_CLIENT_HEADER] = meta;
    const url = new URL(base);
    return new Promise((resolve) => {
      let answered = false;
      let connected = false;
      const out = http.request({ host: url.hostname, port: url.port, method: req.method, path: target, headers, agent: this.agent }, (up) => {
        answered = true;
        const back: Record<string, string | string[]> = {};
        for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) back[k] = v;
        res.writeHead(up.statusCode ?? 502, back);
        res.flushHeaders();
        up.pipe(res);
        up.on('error', () => res.destroy());
        up.on('aborted', () => res.destroy());
        resolve('passed');
      });
      out.on('socket', (s) => {
        s.setNoDelay(true);
        if (!s.connecting) connected = true;
        else s.once('connect', () => { connected = true; });
      });
      out.on('error', () => {
        if (!answered) { resolve(connected || out.reusedSocket ? 'broken' : 'unreachable'); return; }
        res.destroy();
      });
      // The client went away: so does the hop (a stream the owner writes to would be held for nobody).
      res.on('close', () => { if (!res.writableFinished) out.destroy(); });
      req.pipe(out);
    });
  }

  close(): void { this.agent.destroy(); }
}

/** The owner's side: a listener that takes signed hops only and hands them to `handle`. */
export class HopListener {
  private readonly server: http.Server;
  url?: string;

  constructor(private readonly signer: HopSigner, handle: (req: IncomingMessage, res: ServerResponse, client: HopClient) => void) {
    this.server = http.createServer({ requestTimeout: 0, headersTimeout: 10_000 }, (req, res) => {
      const meta = req.headers[HOP_CLIENT_HEADER];
      const sig = req.headers[HOP_HEADER];
      const client = typeof meta === 'string' ? decodeClient(meta) : undefined;
      if (!client || typeof sig !== 'string' || !this.signer.verify(sig, req.method ?? '', req.url ?? '', meta as string)) {
        res.writeHead(403, { 'Content-Type': 'text/plain', Connection: 'close' });
        res.end('403 hop not authenticated\n');
        return;
      }
      delete req.headers[HOP_HEADER];
      delete req.headers[HOP_CLIENT_HEADER];
      handle(req, res, client);
    });
    this.server.keepAliveTimeout = 60_000;
    this.server.on('connection', (s) => s.setNoDelay(true));
  }

  /** Listens on host:port (0: any free port); `url` is what the other processes dial. */
  async listen(host: string, port: number): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      // exclusive: in a cluster worker, a port of its own, not one shared through the primary.
      this.server.listen({ host, port, exclusive: true }, () => { this.server.off('error', reject); resolve(); });
    });
    const a = this.server.address() as AddressInfo;
    this.url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    return this.url;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) { resolve(); return; }
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function decodeClient(meta: string): HopClient | undefined {
  try {
    const c = JSON.parse(Buffer.from(meta, 'base64url').toString('utf8')) as HopClient;
    if (typeof c.address !== 'string' || typeof c.port !== 'number' || typeof c.secure !== 'boolean') return undefined;
    return c;
  } catch {
    return undefined;
  }
}
