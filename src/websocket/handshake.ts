/**
 * The opening handshake (RFC 6455 §4): server-side request validation and
 * response, client-side request and response validation.
 *
 * Duplicated headers are counted on `rawHeaders`: Node joins some duplicates
 * with ", " and silently drops others (Host), so the parsed object cannot tell.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { GatehouseError } from '../errors.js';
import { parseTokenList } from '../http/tokens.js';
import { WS_GUID } from './constants.js';

/** A refused handshake: HTTP status, a stable snake_case reason, headers to add. */
export class HandshakeError extends GatehouseError {
  readonly status: number;
  readonly reason: string;
  readonly headers: Record<string, string>;
  constructor(status: number, reason: string, message?: string, headers: Record<string, string> = {}) {
    super(`GH_HANDSHAKE_${reason.toUpperCase()}`, message ?? reason);
    this.status = status;
    this.reason = reason;
    this.headers = headers;
  }
}

export interface UpgradeRequestLike {
  method?: string;
  httpVersion: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
}

export interface UpgradeRequestInfo {
  key: string;
  protocols: string[];
  extensions: string | undefined;
}

/** Lower-cased, trimmed elements of a comma-separated header value (RFC 9110 §5.6.1). */
function tokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const t = part.trim().toLowerCase();
    if (t.length > 0) out.push(t);
  }
  return out;
}

// RFC 6455 §4.1 item 7: base64 of 16 random bytes = 22 base64 chars + "==".
// Standard alphabet only; the 22nd char carries 2 data bits so it must be one
// of the chars whose low 4 bits are zero (A Q g w) for a canonical encoding.
const KEY_RE = /^[A-Za-z0-9+/]{21}[AQgw]==$/;
const VERSION_RE = /^[0-9]{1,3}$/;

/** The header lines the handshake rules read, collected in one pass over rawHeaders. */
class HandshakeHeaders {
  host: string[] | undefined;
  contentLength: string[] | undefined;
  transferEncoding = 0;
  upgrade: string[] | undefined;
  connection: string[] | undefined;
  key: string[] | undefined;
  version: string[] | undefined;
  protocol: string[] | undefined;
  extensions: string[] | undefined;
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * One pass over the raw header list, keeping only the lines the handshake reads
 * (names compared case-insensitively; every duplicate kept, in arrival order).
 */
function collectHeaders(raw: string[]): HandshakeHeaders {
  const h = new HandshakeHeaders();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    // Only the lengths of the names below can match; skip the rest without lower-casing.
    switch (name.length) {
      case 4: if (name.toLowerCase() === 'host') (h.host ??= []).push(value); break;
      case 7: if (name.toLowerCase() === 'upgrade') (h.upgrade ??= []).push(value); break;
      case 10: if (name.toLowerCase() === 'connection') (h.connection ??= []).push(value); break;
      case 14: if (name.toLowerCase() === 'content-length') (h.contentLength ??= []).push(value); break;
      case 17: {
        const lower = name.toLowerCase();
        if (lower === 'transfer-encoding') h.transferEncoding++;
        else if (lower === 'sec-websocket-key') (h.key ??= []).push(value);
        break;
      }
      case 21: if (name.toLowerCase() === 'sec-websocket-version') (h.version ??= []).push(value); break;
      case 22: if (name.toLowerCase() === 'sec-websocket-protocol') (h.protocol ??= []).push(value); break;
      case 24: if (name.toLowerCase() === 'sec-websocket-extensions') (h.extensions ??= []).push(value); break;
    }
  }
  return h;
}

/** True when exactly one element of the comma-separated lines is `websocket` (case-insensitive) and nothing else. */
function onlyWebsocket(lines: readonly string[]): boolean {
  if (lines.length === 1) {
    const v = lines[0];
    // The common case, "websocket" alone, without splitting.
    if (v.length === 9 && v.toLowerCase() === 'websocket') return true;
  }
  const all = lines.flatMap(tokens);
  return all.length === 1 && all[0] === 'websocket';
}

/** True when one of the comma-separated lines names the `upgrade` token (case-insensitive). */
function hasUpgradeToken(lines: readonly string[]): boolean {
  for (const v of lines) {
    if (v.length === 7 && v.toLowerCase() === 'upgrade') return true;
    if (tokens(v).includes('upgrade')) return true;
  }
  return false;
}

/**
 * Validate a WebSocket upgrade request (RFC 6455 §4.2.1). Throws HandshakeError.
 */
export function validateUpgradeRequest(
  req: UpgradeRequestLike,
  limits: { maxProtocolTokens?: number; maxProtocolBytes?: number } = {},
): UpgradeRequestInfo {
  // §4.2.1 (1): the method MUST be GET.
  if (req.method !== 'GET') {
    throw new HandshakeError(405, 'method_not_allowed', 'method must be GET', { Allow: 'GET' });
  }
  // §4.2.1 (1): HTTP/1.1 or higher (we speak only 1.1 on this path).
  if (req.httpVersion !== '1.1') throw new HandshakeError(400, 'http_version', 'HTTP/1.1 required');
  const h = collectHeaders(req.rawHeaders);
  // §4.2.1 (2): a Host header, exactly one (RFC 9112 §3.2).
  const hosts = h.host ?? NONE;
  if (hosts.length !== 1 || hosts[0].trim() === '') throw new HandshakeError(400, 'bad_host', 'exactly one Host header required');
  // RFC 9112 §6.3 / RFC 9931: an upgrade request with a body is refused; bytes
  // after the head must never be tunnelled.
  if (h.transferEncoding > 0 || (h.contentLength ?? NONE).some((v) => v.trim() !== '0')) {
    throw new HandshakeError(400, 'upgrade_with_body', 'upgrade request must not have a body');
  }
  // §4.2.1 (3): Upgrade contains "websocket" (case-insensitive). A list that
  // also names other protocols (e.g. h2c) is refused so nothing else is switched to.
  if (!onlyWebsocket(h.upgrade ?? NONE)) {
    throw new HandshakeError(400, 'bad_upgrade', 'Upgrade must be websocket');
  }
  // §4.2.1 (4): Connection contains the "upgrade" token.
  if (!hasUpgradeToken(h.connection ?? NONE)) {
    throw new HandshakeError(400, 'bad_connection', 'Connection must include upgrade');
  }
  // §4.2.1 (5): Sec-WebSocket-Key, base64 of exactly 16 bytes, exactly once.
  const keys = h.key ?? NONE;
  if (keys.length !== 1 || !KEY_RE.test(keys[0].trim())) {
    throw new HandshakeError(400, 'bad_key', 'Sec-WebSocket-Key must be base64 of 16 bytes');
  }
  // §4.2.1 (6) and §4.4: version 13; another number → 426 naming 13.
  const versions = h.version ?? NONE;
  if (versions.length !== 1 || !VERSION_RE.test(versions[0].trim())) {
    throw new HandshakeError(400, 'bad_version', 'Sec-WebSocket-Version must be 13');
  }
  if (versions[0].trim() !== '13') {
    throw new HandshakeError(426, 'unsupported_version', 'Sec-WebSocket-Version must be 13', { 'Sec-WebSocket-Version': '13' });
  }
  // §4.2.1 (8): subprotocols; several header lines form one list (RFC 9110 §5.3).
  const protoLines = h.protocol;
  const protocols = protoLines === undefined
    ? []
    : parseSubprotocols(protoLines.join(','), limits.maxProtocolTokens ?? 16, limits.maxProtocolBytes ?? 1024);
  const extLines = h.extensions;
  return {
    key: keys[0].trim(),
    protocols,
    extensions: extLines !== undefined ? extLines.join(', ') : undefined,
  };
}

/**
 * Parse Sec-WebSocket-Protocol (RFC 6455 §4.1, §11.3.4) with the one linear-time
 * token-list parser the admission layer uses too (src/http/tokens.ts; the
 * lesson of CVE-2021-32640). Empty elements, parameters, quotes →
 * 'invalid_subprotocol'; too many or too long → 'subprotocol_limit';
 * duplicates → 'duplicate_subprotocol'.
 */
export function parseSubprotocols(value: string | undefined, maxTokens = 16, maxBytes = 1024): string[] {
  if (value === undefined) return [];
  const r = parseTokenList(value, { maxBytes, maxTokens });
  if (r.ok) return r.tokens;
  switch (r.error) {
    case 'too_long': throw new HandshakeError(400, 'subprotocol_limit', 'Sec-WebSocket-Protocol too long');
    case 'too_many': throw new HandshakeError(400, 'subprotocol_limit', 'too many subprotocols');
    case 'duplicate': throw new HandshakeError(400, 'duplicate_subprotocol', 'subprotocol offered twice');
    case 'syntax': throw new HandshakeError(400, 'invalid_subprotocol', 'empty or invalid subprotocol');
  }
}

/** Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2 item 5.4). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(key + WS_GUID).digest('base64');
}

function headerLines(extra: Record<string, string> | undefined): string {
  let s = '';
  if (extra === undefined) return s;
  for (const [k, v] of Object.entries(extra)) {
    // Never let a value split the response (CRLF injection).
    if (/[\r\n]/.test(k) || /[\r\n]/.test(v)) throw new TypeError(`invalid header ${k}`);
    s += `${k}: ${v}\r\n`;
  }
  return s;
}

/** The 101 response (RFC 6455 §4.2.2 item 5). `protocol` '' = none. */
export function buildUpgradeResponse(key: string, protocol: string, extraHeaders?: Record<string, string>): string {
  return (
    'HTTP/1.1 101 Switching Protocols\r\n' +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Accept: ${acceptKey(key)}\r\n` +
    (protocol !== '' ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '') +
    headerLines(extraHeaders) +
    '\r\n'
  );
}

/** A fresh Sec-WebSocket-Key (RFC 6455 §4.1 item 7: 16 random bytes). */
export function generateKey(): string {
  return randomBytes(16).toString('base64');
}

/** The client's opening handshake request (RFC 6455 §4.1). */
export function buildClientRequest(opts: {
  path: string; host: string; key: string; protocols?: string[]; headers?: Record<string, string>;
}): string {
  if (/[\s]/.test(opts.path) || /[\r\n]/.test(opts.host)) throw new TypeError('invalid path or host');
  const protocols = opts.protocols ?? [];
  return (
    `GET ${opts.path} HTTP/1.1\r\n` +
    `Host: ${opts.host}\r\n` +
    'Upgrade: websocket\r\n' +
    'Connection: Upgrade\r\n' +
    `Sec-WebSocket-Key: ${opts.key}\r\n` +
    'Sec-WebSocket-Version: 13\r\n' +
    (protocols.length > 0 ? `Sec-WebSocket-Protocol: ${protocols.join(', ')}\r\n` : '') +
    headerLines(opts.headers) +
    '\r\n'
  );
}

function headerValue(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h.join(', ') : h;
}

/**
 * Validate the server's answer (RFC 6455 §4.1, client requirements 1–6).
 * Any failure is a HandshakeError with status 502 (bad gateway). With
 * `extensionsOffered`, the Sec-WebSocket-Extensions answer is returned for
 * the extension to check (permessage-deflate.ts); without, any is refused.
 */
export function validateServerResponse(
  res: { statusCode: number; headers: IncomingHttpHeaders }, key: string, offeredProtocols: string[], extensionsOffered = false,
): { protocol: string; extensions?: string } {
  const h = res.headers;
  // (1) status 101.
  if (res.statusCode !== 101) throw new HandshakeError(502, 'backend_status', `backend answered ${res.statusCode}, not 101`);
  // (2) Upgrade: websocket.
  const up = headerValue(h.upgrade);
  if (up === undefined || up.trim().toLowerCase() !== 'websocket') throw new HandshakeError(502, 'backend_bad_upgrade', 'backend 101 without Upgrade: websocket');
  // (3) Connection: upgrade.
  const conn = headerValue(h.connection);
  if (conn === undefined || !tokens(conn).includes('upgrade')) throw new HandshakeError(502, 'backend_bad_connection', 'backend 101 without Connection: upgrade');
  // (4) Sec-WebSocket-Accept matches our key.
  if (headerValue(h['sec-websocket-accept'])?.trim() !== acceptKey(key)) {
    throw new HandshakeError(502, 'backend_bad_accept', 'backend sent a wrong Sec-WebSocket-Accept');
  }
  // (5) no extension we did not offer.
  const ext = headerValue(h['sec-websocket-extensions']);
  const extensions = ext !== undefined && ext.trim() !== '' ? ext : undefined;
  if (extensions !== undefined && !extensionsOffered) throw new HandshakeError(502, 'backend_bad_extension', 'backend chose an extension we did not offer');
  // (6) a subprotocol, if any, must be one we offered.
  const proto = headerValue(h['sec-websocket-protocol']);
  let protocol = '';
  if (proto !== undefined && proto.trim() !== '') {
    protocol = proto.trim();
    if (!offeredProtocols.includes(protocol)) throw new HandshakeError(502, 'backend_bad_subprotocol', 'backend chose a subprotocol we did not offer');
  }
  return extensions === undefined ? { protocol } : { protocol, extensions };
}
