/**
 * Helpers for the auth integration tests: open a WebSocket with the `ws`
 * client and report either the open socket or the refusal (status, headers),
 * and wait for close with its code and reason.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';

export type Outcome =
  | { kind: 'open'; ws: WebSocket; protocolHeader: string | undefined }
  | { kind: 'refused'; status: number; headers: IncomingMessage['headers']; body: string };

export function connect(url: string, opts: { headers?: Record<string, string>; protocols?: string[]; localAddress?: string } = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers, perMessageDeflate: false, localAddress: opts.localAddress });
    let protocolHeader: string | undefined;
    ws.once('upgrade', (res) => { protocolHeader = res.headers['sec-websocket-protocol'] as string | undefined; });
    ws.once('open', () => resolve({ kind: 'open', ws, protocolHeader }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ kind: 'refused', status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    ws.once('error', (err) => reject(err));
  });
}

export async function open(url: string, opts: { headers?: Record<string, string>; protocols?: string[]; localAddress?: string } = {}): Promise<WebSocket> {
  const o = await connect(url, opts);
  if (o.kind !== 'open') throw new Error(`expected 101, got ${o.status}`);
  return o.ws;
}

export async function refused(url: string, opts: { headers?: Record<string, string>; protocols?: string[] } = {}) {
  const o = await connect(url, opts);
  if (o.kind === 'open') { o.ws.terminate(); throw new Error('expected a refusal, got 101'); }
  return o;
}

/** Sends a message and waits for its echo. */
export async function roundTrip(ws: WebSocket, text = 'ping'): Promise<string> {
  const got = once(ws, 'message');
  ws.send(text);
  const [data] = await got;
  return String(data);
}

export async function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) throw new Error('already closed');
  const [code, reason] = await once(ws, 'close') as [number, Buffer];
  return { code, reason: reason.toString() };
}

/** A bare upgrade request (Node's http client) to look at the 101's headers; the socket is then dropped. */
export function rawUpgrade(url: string, headers: Record<string, string>): Promise<{ status: number; headers: IncomingMessage['headers'] }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url.replace(/^ws/, 'http'), {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64'), ...headers },
    });
    req.on('upgrade', (res, socket) => { socket.destroy(); resolve({ status: res.statusCode ?? 0, headers: res.headers }); });
    req.on('response', (res) => { res.resume(); resolve({ status: res.statusCode ?? 0, headers: res.headers }); });
    req.on('error', reject);
  });
}
