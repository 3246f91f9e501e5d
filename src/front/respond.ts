/**
 * Writing refusals straight onto a raw socket (the upgrade path has no
 * ServerResponse). Every refusal closes the connection: bytes the client
 * pipelined behind a refused upgrade are never parsed or forwarded.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { Rejection } from '../admission/types.js';

/** Header values we write must never smuggle a line break. */
function clean(v: string): string {
  return v.replace(/[\r\n]/g, ' ');
}

export function writeRejection(socket: Duplex, rejection: Pick<Rejection, 'status' | 'message' | 'headers'>): void {
  if (socket.destroyed) return;
  const body = `${rejection.message}\n`;
  let head = `HTTP/1.1 ${rejection.status} ${STATUS_CODES[rejection.status] ?? 'Error'}\r\n`
    + 'Connection: close\r\n'
    + 'Content-Type: text/plain; charset=utf-8\r\n'
    + 'Cache-Control: no-store\r\n'
    + 'X-Content-Type-Options: nosniff\r\n'
    + `Content-Length: ${Buffer.byteLength(body)}\r\n`;
  for (const [k, v] of Object.entries(rejection.headers)) head += `${clean(k)}: ${clean(v)}\r\n`;
  socket.end(`${head}\r\n${body}`);
  // A peer that never reads must not keep the socket alive.
  const timer = setTimeout(() => socket.destroy(), 2000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** The answer to anything that would open a channel (either transport) once drain has begun. */
export function drainingRejection(): Rejection {
  return new Rejection(503, 'draining', 'gateway is shutting down', { 'Retry-After': '5' });
}
