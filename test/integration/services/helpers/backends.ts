/**
 * Backends for the service tests: a `ws` echo server (plain or TLS, optional
 * client certificate), a TCP echo server, and a raw socket server whose
 * behaviour each test scripts (wrong statuses, garbage, stalls, invalid frames).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';

export interface WsBackend {
  port: number;
  url: string;
  wss: WebSocketServer;
  /** Resolves with the next server-side socket (and the upgrade request) accepted after this call. */
  nextConnection(): Promise<{ ws: WebSocket; req: http.IncomingMessage }>;
  close(): Promise<void>;
}

export interface WsBackendOptions {
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; requestCert?: boolean };
  /** Echo every message back (default true). */
  echo?: boolean;
  /** Echo with this prefix, to tell backends apart. */
  tag?: string;
  handleProtocols?: (protocols: Set<string>) => string | false;
}

export async function startWsBackend(opts: WsBackendOptions = {}): Promise<WsBackend> {
  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, ca: opts.tls.ca, requestCert: opts.tls.requestCert ?? false, rejectUnauthorized: opts.tls.requestCert ?? false })
    : http.createServer();
  const wss = new WebSocketServer({ server, handleProtocols: opts.handleProtocols });
  const waiting: Array<(c: { ws: WebSocket; req: http.IncomingMessage }) => void> = [];
  wss.on('connection', (ws, req) => {
    ws.on('error', () => {});
    if (opts.tag !== undefined) ws.on('message', (data) => ws.send(`${opts.tag}${String(data)}`));
    else if (opts.echo !== false) ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
    for (const w of waiting.splice(0)) w({ ws, req });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `${opts.tls ? 'wss' : 'ws'}://127.0.0.1:${port}/backend`,
    wss,
    nextConnection: () => new Promise((resolve) => { waiting.push(resolve); }),
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface RawBackend {
  port: number;
  sockets: Set<net.Socket>;
  /** Resolves with the next socket accepted after this call. */
  nextSocket(): Promise<net.Socket>;
  close(): Promise<void>;
}

/** A plain TCP (or TLS) server; `onSocket` scripts what it does with each connection. */
export async function startRawBackend(onSocket: (socket: net.Socket) => void = () => {}, tlsOpts?: tls.TlsOptions): Promise<RawBackend> {
  const sockets = new Set<net.Socket>();
  const waiting: Array<(s: net.Socket) => void> = [];
  const handle = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
    for (const w of waiting.splice(0)) w(socket);
  };
  const server = tlsOpts ? tls.createServer(tlsOpts, handle) : net.createServer(handle);
  if (tlsOpts) server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sockets,
    nextSocket: () => new Promise((resolve) => { waiting.push(resolve); }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** TCP echo: every byte comes back. */
export function echoSocket(socket: net.Socket): void {
  socket.pipe(socket);
}

/** Reads an HTTP request head from a raw socket; resolves with the Sec-WebSocket-Key. */
export function readUpgradeKey(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.removeListener('data', onData);
      const m = /^sec-websocket-key:\s*(\S+)\s*$/im.exec(buf.slice(0, end));
      if (m) resolve(m[1]); else reject(new Error('no key'));
    };
    socket.on('data', onData);
  });
}

export function acceptFor(key: string): string {
  return createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
}

/** A 101 answer for `key` (as a conforming server would send). */
export function switchingProtocols(key: string): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`;
}

/** A server→client frame; `mask` makes it illegal (servers must not mask). */
export function serverFrame(opcode: number, payload: Buffer, opts: { fin?: boolean; mask?: boolean } = {}): Buffer {
  const fin = opts.fin ?? true;
  const len = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | opcode];
  const maskBit = opts.mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, len >> 8, len & 0xff);
  else throw new Error('test frames stay small');
  if (!opts.mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), key, masked]);
}
