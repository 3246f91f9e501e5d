/**
 * A small front door for the admission tests, built from the real parts:
 * createListenerServer (limits, TLS, PROXY protocol, trusted proxies) → Router →
 * AdmissionPipeline → 101 → a Channel → ChannelGuard → an echo "service".
 * Until the lead's FrontDoor lands this stands in for it; the upgrade itself is
 * done by the `ws` server in noServer mode, adapted to the Channel interface.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectOptions } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { AdmissionPipeline } from '../../../src/admission/pipeline.js';
import { Rejection, type Admission } from '../../../src/admission/types.js';
import { ChannelGuard } from '../../../src/admission/channel-guard.js';
import type { Channel, ChannelSink, CloseInfo } from '../../../src/channel.js';
import { parseConfig, servicesOf } from '../../../src/config/load.js';
import type { GatehouseConfig } from '../../../src/config/schema.js';
import { createListenerServer, writeRawResponse, type ListenerServer } from '../../../src/front/listener.js';
import { toAdmissionRequest } from '../../../src/front/request.js';
import { Router } from '../../../src/front/router.js';
import { Audit } from '../../../src/observe/audit.js';
import { createLogger } from '../../../src/observe/log.js';
import { Metrics } from '../../../src/observe/metrics.js';

export interface Door {
  config: GatehouseConfig;
  listeners: ListenerServer[];
  ports: number[];
  port: number;
  metrics: Metrics;
  guard: ChannelGuard;
  lines: Array<Record<string, unknown>>;
  /** Admissions of connections the door opened (for assertions on principal, tls, address). */
  admissions: Admission[];
  audited(reason: string): Promise<Record<string, unknown> | undefined>;
  stop(): Promise<void>;
}

/** Adapts a `ws` server-side socket to the Channel interface. */
class WsChannel implements Channel {
  readonly transport = 'websocket' as const;
  readonly extensions = '';
  private sink?: ChannelSink;
  private ended = false;
  constructor(private readonly ws: WebSocket, readonly admission: Admission, private readonly hwm = 64 * 1024) {
    ws.on('message', (data: Buffer, isBinary: boolean) => this.sink?.onMessage?.(data, isBinary));
    ws.on('close', (code: number, reason: Buffer) => {
      this.ended = true;
      this.sink?.onClose?.({ code, reason: reason.toString(), wasClean: code !== 1006, initiator: 'remote' } satisfies CloseInfo);
    });
    ws.on('error', () => { /* close follows */ });
    (ws as unknown as { _socket: Socket })._socket.on('drain', () => this.sink?.onDrain?.());
  }
  get protocol(): string { return this.ws.protocol; }
  get bufferedAmount(): number { return this.ws.bufferedAmount; }
  get closed(): boolean { return this.ended; }
  attach(sink: ChannelSink): void { this.sink = sink; }
  send(data: Buffer | string, isBinary: boolean): boolean {
    this.ws.send(data, { binary: isBinary });
    return this.ws.bufferedAmount < this.hwm;
  }
  sendFragment(data: Buffer, isBinary: boolean, _first: boolean, fin: boolean): boolean {
    this.ws.send(data, { binary: isBinary, fin });
    return this.ws.bufferedAmount < this.hwm;
  }
  pause(): void { this.ws.pause(); }
  resume(): void { this.ws.resume(); }
  close(code?: number, reason?: string): void { this.ws.close(code, reason); }
  terminate(): void { this.ws.terminate(); }
}

/**
 * Echo service with test commands: `flood:<KiB>` sends that much in 16 KiB
 * messages respecting backpressure; `blast:<KiB>` sends it ignoring `send`'s
 * answer (a producer that would grow the queue without bound).
 */
function echoService(channel: Channel): void {
  let pendingFlood = 0;
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  const pump = (): void => {
    while (pendingFlood > 0 && !channel.closed) {
      pendingFlood--;
      if (!channel.send(chunk, true)) return;
    }
  };
  channel.attach({
    onMessage(data, isBinary) {
      const text = isBinary ? '' : data.toString();
      if (text.startsWith('flood:')) { pendingFlood = Number(text.slice(6)) / 16; pump(); return; }
      if (text.startsWith('blast:')) {
        for (let i = 0; i < Number(text.slice(6)) / 16 && !channel.closed; i++) channel.send(chunk, true);
        return;
      }
      channel.send(data, isBinary);
    },
    onDrain: pump,
  });
}

export async function startDoor(raw: Record<string, unknown>): Promise<Door> {
  const config = parseConfig(raw, {});
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger('info', sink);
  const metrics = new Metrics();
  const audit = new Audit(log, metrics, 10_000);
  const services = servicesOf(config);
  const router = new Router(services);
  const pipeline = new AdmissionPipeline(services, { config, log, metrics }, audit);
  const guard = new ChannelGuard({ limits: config.limits, audit, sweepInterval: 100 });
  const admitted = new WeakMap<IncomingMessage, Admission>();
  const admissions: Admission[] = [];
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (_offered, req) => admitted.get(req)?.protocol || false,
  });
  const open = new Set<WebSocket>();

  const listeners = config.listen.map((l) => createListenerServer(l, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('gatehouse test door\n');
  }, (req, socket, head) => {
    void (async () => {
      const request = toAdmissionRequest(req, 'websocket');
      const route = router.match(req.headers.host, request.path);
      if (route instanceof Rejection) { writeRawResponse(socket, route.status, route.headers); return; }
      const outcome = await pipeline.admit(request, route);
      if (outcome instanceof Rejection) { writeRawResponse(socket, outcome.status, outcome.headers); return; }
      admitted.set(req, outcome);
      admissions.push(outcome);
      socket.on('error', () => outcome.release());
      wss.handleUpgrade(req, socket, head, (ws) => {
        open.add(ws);
        ws.on('close', () => { open.delete(ws); outcome.release(); });
        echoService(guard.wrap(new WsChannel(ws, outcome)));
      });
    })();
  }, { limits: config.limits, trustedProxies: config.trusted_proxies, audit, log }));
  const ports: number[] = [];
  for (const l of listeners) ports.push((await l.listen()).port);

  return {
    config, listeners, ports, port: ports[0], metrics, guard, lines, admissions,
    async audited(reason) {
      for (let i = 0; i < 100; i++) {
        const line = lines.find((l) => l.reason === reason);
        if (line) return line;
        await new Promise((r) => setTimeout(r, 20));
      }
      return undefined;
    },
    async stop() {
      for (const ws of open) ws.terminate();
      guard.stop();
      await Promise.all(listeners.map((l) => l.close()));
    },
  };
}

export interface RawResponse { status: number; head: string; headers: Record<string, string>; closed: boolean }

/**
 * Write `text` on a fresh TCP (or TLS) connection, read until the response head
 * is complete, then wait for the server to close. `status` is 0 when the
 * connection was dropped without a response.
 */
export function rawExchange(port: number, text: string | Buffer, opts: { tls?: TlsConnectOptions; waitClose?: boolean } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket: Socket = opts.tls
      ? tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false, ...opts.tls }, () => socket.write(text))
      : netConnect(port, '127.0.0.1', () => socket.write(text));
    let data = '';
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const end = data.indexOf('\r\n\r\n');
      const head = end >= 0 ? data.slice(0, end) : data;
      const [statusLine, ...rest] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of rest) {
        const c = l.indexOf(':');
        if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
      }
      const m = /^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '');
      if (closed || opts.waitClose === false) socket.destroy();
      resolve({ status: m ? Number(m[1]) : 0, head, headers, closed });
    };
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      data += d;
      if (opts.waitClose === false && data.includes('\r\n\r\n')) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => { /* close follows */ });
    const timer = setTimeout(() => { socket.destroy(); if (!done) reject(new Error(`no close within 10 s; got ${JSON.stringify(data.slice(0, 200))}`)); }, 10_000);
  });
}

/** A minimal valid upgrade request. */
export function upgradeRequest(path: string, headers: Array<[string, string]> = [], host = '127.0.0.1'): string {
  const lines = [
    `GET ${path} HTTP/1.1`, `Host: ${host}`, 'Upgrade: websocket', 'Connection: Upgrade',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13',
    ...headers.map(([k, v]) => `${k}: ${v}`),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Certificates made by openssl for the tests, in a temp dir removed by `cleanup`. */
export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'gatehouse-pki-'));
  constructor() {
    this.run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Gatehouse Test CA',
      '-keyout', this.path('ca.key'), '-out', this.path('ca.crt'),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** A self-signed server certificate for `names` (first is the CN); returns {cert, key} paths. */
  serverCert(file: string, names: string[]): { cert: string; key: string } {
    const cert = this.path(`${file}.crt`);
    const key = this.path(`${file}.key`);
    this.run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${names[0]}`,
      '-keyout', key, '-out', cert, '-addext', `subjectAltName=${names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}`]);
    return { cert, key };
  }

  /** A client certificate signed by the test CA (or by `otherCa`, a second CA the server does not know). */
  clientCert(file: string, subject: string, signer: 'ca' | 'rogue' = 'ca'): { cert: string; key: string } {
    if (signer === 'rogue' && !this.exists('rogue.crt')) {
      this.run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=Rogue CA',
        '-keyout', this.path('rogue.key'), '-out', this.path('rogue.crt'), '-addext', 'basicConstraints=critical,CA:TRUE']);
    }
    const key = this.path(`${file}.key`);
    const csr = this.path(`${file}.csr`);
    const cert = this.path(`${file}.crt`);
    this.run(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', key, '-out', csr]);
    const ext = this.path(`${file}.ext`);
    writeFileSync(ext, 'extendedKeyUsage=clientAuth\n');
    this.run(['x509', '-req', '-in', csr, '-CA', this.path(`${signer}.crt`), '-CAkey', this.path(`${signer}.key`),
      '-CAcreateserial', '-days', '2', '-out', cert, '-extfile', ext]);
    return { cert, key };
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private exists(name: string): boolean {
    try { execFileSync('test', ['-e', this.path(name)]); return true; } catch { return false; }
  }

  private run(args: string[]): void {
    execFileSync('openssl', args, { stdio: 'ignore' });
  }
}
