/**
 * Our engine in client role: connect to a ws:// or wss:// backend.
 *
 * Plain `net`/`tls` sockets; the HTTP response head is parsed here (bounded to
 * 16 KiB) so that the bytes after it — possibly the first frames — are handed
 * to the connection as `head` and nothing is lost or double-parsed.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { IncomingHttpHeaders } from 'node:http';
import { BackendError } from '../errors.js';
import { HandshakeError, buildClientRequest, generateKey, validateServerResponse } from './handshake.js';
import { WebSocketConnection, type ConnectionOptions } from './connection.js';
import { DIALLED_READS } from './dialled-reads.js';
import { acceptDeflateResponse, type DeflateClientOffer, type DeflateOptions } from './permessage-deflate.js';

export interface ConnectOptions {
  protocols?: string[];
  headers?: Record<string, string>;
  /** TLS options for wss:// (certificate verification stays on unless explicitly disabled here). */
  tls?: tls.ConnectionOptions;
  /** ms for connect + handshake; default 10 000. */
  timeout?: number;
  /** Kept by reference and shared by the connections made with the same object: do not change it afterwards. */
  connection?: Partial<ConnectionOptions>;
  /** Offer permessage-deflate (RFC 7692); the backend's answer is checked against it (502 `backend_bad_extension`). */
  deflate?: DeflateClientOffer;
}

const EMPTY = Buffer.alloc(0);

/** Largest HTTP response head we accept from a backend. */
export const MAX_RESPONSE_HEAD = 16 * 1024;

const CONNECTION_DEFAULTS: Omit<ConnectionOptions, 'role'> = {
  maxMessage: 1024 * 1024,
  maxFragments: 1024,
  messageTimeout: 30_000,
  pingInterval: 25_000,
  pongTimeout: 20_000,
  idleTimeout: 120_000,
  closeTimeout: 5_000,
  highWaterMark: 1024 * 1024,
};

const DEFAULT_CLIENT_OPTIONS: ConnectionOptions = { ...CONNECTION_DEFAULTS, role: 'client' };
const mergedOptions = new WeakMap<Partial<ConnectionOptions>, ConnectionOptions>();

/**
 * The connection options for `opts.connection`, merged once per object and
 * shared by every connection made with it (a WebSocketConnection keeps its
 * options by reference; one object per connection would cost memory on every
 * idle connection). The caller's object is therefore treated as immutable.
 */
function clientOptions(connection: Partial<ConnectionOptions> | undefined): ConnectionOptions {
  if (connection === undefined) return DEFAULT_CLIENT_OPTIONS;
  let merged = mergedOptions.get(connection);
  if (merged === undefined) {
    merged = { ...CONNECTION_DEFAULTS, ...connection, role: 'client' };
    mergedOptions.set(connection, merged);
  }
  return merged;
}

interface ParsedHead {
  statusCode: number;
  headers: IncomingHttpHeaders;
}

/** Parse "HTTP/1.1 101 ...\r\nName: value\r\n..." (without the final CRLFCRLF). */
export function parseResponseHead(text: string): ParsedHead {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0]);
  if (m === null) throw new HandshakeError(502, 'backend_bad_response', 'backend sent an invalid status line');
  const headers: Record<string, string | string[]> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const c = line.indexOf(':');
    // No obs-fold, no space before the colon (RFC 9112 §5.1-5.2).
    if (c <= 0 || /[\s]/.test(line.slice(0, c))) throw new HandshakeError(502, 'backend_bad_response', 'backend sent an invalid header line');
    const name = line.slice(0, c).toLowerCase();
    const value = line.slice(c + 1).trim();
    const prev = headers[name];
    if (prev === undefined) headers[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[name] = [prev, value];
  }
  return { statusCode: Number(m[1]), headers: headers as IncomingHttpHeaders };
}

export function connectWebSocket(url: string, opts: ConnectOptions = {}): Promise<WebSocketConnection> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new BackendError('GH_BACKEND_URL', 502, 'invalid backend URL'));
      return;
    }
    const secure = u.protocol === 'wss:';
    if (!secure && u.protocol !== 'ws:') {
      reject(new BackendError('GH_BACKEND_URL', 502, 'backend URL must be ws:// or wss://'));
      return;
    }
    const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
    const port = u.port !== '' ? Number(u.port) : secure ? 443 : 80;
    const protocols = opts.protocols ?? [];
    const key = generateKey();
    const timeoutMs = opts.timeout ?? 10_000;

    let settled = false;
    const buffered: Buffer[] = [];
    let bufferedLen = 0;
    /** The last bytes read (at most 3): the start of a blank line the next read may finish. */
    let tail: Buffer = EMPTY;

    const socket: net.Socket = secure
      ? tls.connect({ host, port, servername: net.isIP(host) === 0 ? host : undefined, ...opts.tls })
      : net.connect({ host, port, onread: DIALLED_READS });

    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.destroy();
      reject(err);
    };

    const timer = setTimeout(() => {
      fail(new BackendError('GH_BACKEND_TIMEOUT', 504, `backend handshake timed out after ${timeoutMs} ms`));
    }, timeoutMs);

    const onError = (err: NodeJS.ErrnoException): void => {
      if (settled) return;
      const code = err.code ?? '';
      if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
        fail(new BackendError('GH_BACKEND_CONNECT', 502, `backend connection failed: ${code}`, { cause: err }));
      } else if (code.startsWith('ERR_TLS') || code.includes('CERT') || code.startsWith('ERR_SSL') || err.message.includes('certificate')) {
        fail(new BackendError('GH_BACKEND_TLS', 502, `backend TLS failed: ${code || err.message}`, { cause: err }));
      } else {
        fail(new BackendError('GH_BACKEND_ERROR', 502, `backend error: ${code || err.message}`, { cause: err }));
      }
    };
    const onClose = (): void => {
      fail(new BackendError('GH_BACKEND_CLOSED', 502, 'backend closed the connection during the handshake'));
    };
    socket.on('error', onError);
    socket.on('close', onClose);

    socket.once(secure ? 'secureConnect' : 'connect', () => {
      const hostHeader = u.port !== '' ? `${u.hostname}:${u.port}` : u.hostname;
      try {
        const headers = opts.deflate !== undefined ? { ...opts.headers, 'Sec-WebSocket-Extensions': opts.deflate.header } : opts.headers;
        socket.write(buildClientRequest({ path: (u.pathname || '/') + u.search, host: hostHeader, key, protocols, headers }));
      } catch (err) {
        fail(err as Error);
      }
    });

    function onData(chunk: Buffer): void {
      // Each byte is searched once: only the chunk, plus the 3 bytes before it
      // in case the blank line straddles two reads (not the whole head again per chunk).
      const probe = tail.length === 0 ? chunk : Buffer.concat([tail, chunk]);
      const found = probe.indexOf('\r\n\r\n');
      const before = bufferedLen - tail.length;
      buffered.push(chunk);
      bufferedLen += chunk.length;
      if (found < 0) {
        if (bufferedLen > MAX_RESPONSE_HEAD) fail(new HandshakeError(502, 'backend_head_too_large', 'backend response head too large'));
        tail = probe.subarray(Math.max(0, probe.length - 3));
        return;
      }
      const end = before + found;
      if (end > MAX_RESPONSE_HEAD) {
        fail(new HandshakeError(502, 'backend_head_too_large', 'backend response head too large'));
        return;
      }
      // Joined once, when the head is complete.
      const all = buffered.length === 1 ? chunk : Buffer.concat(buffered, bufferedLen);
      let protocol: string;
      let deflate: DeflateOptions | null;
      try {
        const head = parseResponseHead(all.subarray(0, end).toString('latin1'));
        if (head.statusCode !== 101) {
          throw new HandshakeError(502, 'backend_status', `backend answered ${head.statusCode}, not 101`);
        }
        const answer = validateServerResponse(head, key, protocols, opts.deflate !== undefined);
        protocol = answer.protocol;
        // RFC 7692 §5.1: a response we cannot accept fails the connection (HandshakeError 502).
        deflate = acceptDeflateResponse(answer.extensions, opts.deflate);
      } catch (err) {
        fail(err as Error);
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.removeListener('error', onError);
      const conn = new WebSocketConnection(socket, all.subarray(end + 4), clientOptions(opts.connection), { protocol, deflate });
      resolve(conn);
    }
    socket.on('data', onData);
  });
}
