/**
 * Turns Node's IncomingMessage into the transport-neutral AdmissionRequest the
 * pipeline reads. The path is split from the query without decoding.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { AdmissionRequest, TlsInfo } from '../admission/types.js';
import { clientAddressOf } from './listener.js';

export function splitTarget(url: string): { path: string; query: URLSearchParams } {
  const q = url.indexOf('?');
  if (q < 0) return { path: url, query: new URLSearchParams() };
  return { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

export function toAdmissionRequest(req: IncomingMessage, transport: 'websocket' | 'fallback'): AdmissionRequest {
  const url = req.url ?? '/';
  const { path, query } = splitTarget(url);
  const socket = req.socket;
  const secure = (socket as TLSSocket).encrypted === true;
  const peer = socket.remoteAddress ?? '';
  // The listener resolved the client (PROXY header, trusted proxies); else the socket peer.
  const client = clientAddressOf(req);
  return {
    transport,
    method: req.method ?? 'GET',
    url,
    path,
    query,
    httpVersion: req.httpVersion,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    remoteAddress: client?.address ?? peer,
    remotePort: client?.port ?? socket.remotePort ?? 0,
    peerAddress: peer,
    localPort: socket.localPort ?? 0,
    secure,
    tls: secure ? tlsInfo(socket as TLSSocket) : undefined,
  };
}

function tlsInfo(socket: TLSSocket): TlsInfo {
  const info: TlsInfo = {
    protocol: socket.getProtocol?.() ?? null,
    servername: (socket as TLSSocket & { servername?: string | false }).servername || null,
    authorized: socket.authorized === true,
  };
  if (socket.authorized) {
    const cert = socket.getPeerCertificate();
    if (cert && cert.subject) {
      info.subject = { ...cert.subject } as unknown as Record<string, string>;
      info.fingerprint256 = cert.fingerprint256;
    }
  }
  return info;
}
