/**
 * Test plumbing for the admission suites: a real Gateway (front door with the
 * listeners of src/front/listener.ts, the admission pipeline, the codec, the
 * channel guard, the echo service) on ephemeral ports with its log captured,
 * raw exchanges over TCP/TLS, and certificates made with openssl.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions as TlsConnectOptions } from 'node:tls';
import type { Admission } from '../../../src/admission/types.js';
import { parseConfig } from '../../../src/config/load.js';
import type { GatehouseConfig } from '../../../src/config/schema.js';
import { Gateway } from '../../../src/gateway.js';
import { createLogger } from '../../../src/observe/log.js';
import type { Metrics } from '../../../src/observe/metrics.js';

export interface Door {
  gateway: Gateway;
  config: GatehouseConfig;
  ports: number[];
  port: number;
  metrics: Metrics;
  lines: Array<Record<string, unknown>>;
  /** Admissions of the channels the gateway opened, in order. */
  admissions: Admission[];
  /** The first audit line with this reason (waits up to 2 s for it). */
  audited(reason: string): Promise<Record<string, unknown> | undefined>;
  /** The first log line whose msg matches (waits up to 2 s). */
  logged(msg: RegExp, after?: number): Promise<Record<string, unknown> | undefined>;
  stop(): Promise<void>;
}

export async function startDoor(raw: Record<string, unknown>): Promise<Door> {
  const config = parseConfig({ ...raw, log: { level: 'info', bad_input_per_second: 10_000 } }, {});
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) { try { lines.push(JSON.parse(l) as Record<string, unknown>); } catch { /* partial */ } }
      cb();
    },
  });
  const gateway = await Gateway.start(config, { logger: createLogger('info', sink) });
  const admissions: Admission[] = [];
  gateway.front.addChannelHook((_channel, admission) => { admissions.push(admission); });
  const ports = gateway.addresses.map((a) => a.port);
  const waitFor = async <T>(find: () => T | undefined): Promise<T | undefined> => {
    for (let i = 0; i < 100; i++) {
      const found = find();
      if (found !== undefined) return found;
      await new Promise((r) => setTimeout(r, 20));
    }
    return undefined;
  };
  return {
    gateway, config, ports, port: ports[0], metrics: gateway.metrics, lines, admissions,
    audited: (reason) => waitFor(() => lines.find((l) => l.audit === true && l.reason === reason)),
    logged: (msg, after = 0) => waitFor(() => lines.slice(after).find((l) => typeof l.msg === 'string' && msg.test(l.msg))),
    stop: () => gateway.stop(500),
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
