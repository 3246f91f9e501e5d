/**
 * Finding credentials in a request without trusting its shape: duplicated
 * headers, ambiguous cookies and malformed subprotocol lists are reported as
 * such (the caller turns them into 400 / 401), never silently resolved.
 */
import type { AdmissionContext, AdmissionRequest } from '../admission/types.js';

/** RFC 7230 token characters (also what Sec-WebSocket-Protocol entries are made of). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** How many times a header occurs in the raw request (Node keeps only the first Authorization). */
export function headerCount(request: AdmissionRequest, name: string): number {
  let n = 0;
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) n++;
  return n;
}

export type CookieLookup =
  | { kind: 'absent' }
  | { kind: 'found'; value: string }
  /** The same cookie name with different values (RFC 6265 §5.4 gives no safe winner): refuse. */
  | { kind: 'ambiguous' };

/**
 * Looks one cookie up in the Cookie header(s). Node joins several Cookie
 * headers with "; ", so two headers are seen like one. Names compare exactly
 * (cookie names are case-sensitive); a name given twice with the same value is fine.
 */
export function findCookie(request: AdmissionRequest, name: string): CookieLookup {
  const header = request.headers.cookie;
  if (typeof header !== 'string' || header.length === 0) return { kind: 'absent' };
  let found: string | undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (found !== undefined && found !== value) return { kind: 'ambiguous' };
    found = value;
  }
  return found === undefined ? { kind: 'absent' } : { kind: 'found', value: found };
}

export type AuthorizationLookup =
  | { kind: 'absent' }
  | { kind: 'found'; scheme: string; value: string }
  | { kind: 'duplicate' }
  | { kind: 'malformed' };

/** The Authorization header split into scheme (lowercased) and credentials. */
export function findAuthorization(request: AdmissionRequest): AuthorizationLookup {
  const count = headerCount(request, 'authorization');
  if (count === 0) return { kind: 'absent' };
  if (count > 1) return { kind: 'duplicate' };
  const header = request.headers.authorization ?? '';
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) +(\S+) *$/.exec(header);
  if (!m) return { kind: 'malformed' };
  return { kind: 'found', scheme: m[1].toLowerCase(), value: m[2] };
}

/**
 * The subprotocols the client offered. The admission engineer's sanity check
 * normally fills `ctx.offeredProtocols` from the header; if it has not (or the
 * header is absent), parse it here so a credential carrier can be found and removed.
 * Returns undefined when the header is syntactically bad.
 */
export function offeredProtocols(ctx: AdmissionContext): string[] | undefined {
  if (ctx.offeredProtocols.length > 0) return ctx.offeredProtocols;
  const header = ctx.request.headers['sec-websocket-protocol'];
  if (header === undefined || header === '') return ctx.offeredProtocols;
  const list = String(header).split(',').map((s) => s.trim());
  if (list.some((p) => !TOKEN.test(p))) return undefined;
  ctx.offeredProtocols = list;
  return list;
}

/**
 * Takes a credential out of the offered subprotocols: the first entry
 * starting with `prefix`. The entry is removed from `ctx.offeredProtocols`,
 * so the subprotocol check (which runs later) can never echo it.
 */
export function takeProtocolCredential(ctx: AdmissionContext, prefix: string): string | undefined {
  const list = offeredProtocols(ctx);
  if (!list) return undefined;
  const i = list.findIndex((p) => p.startsWith(prefix) && p.length > prefix.length);
  if (i < 0) return undefined;
  const value = list[i].slice(prefix.length);
  ctx.offeredProtocols = list.filter((p) => !p.startsWith(prefix));
  return value;
}

/** The only query value of `name`; several values are ambiguous (undefined + flag). */
export function findQuery(request: AdmissionRequest, name: string): CookieLookup {
  const all = request.query.getAll(name);
  if (all.length === 0) return { kind: 'absent' };
  if (all.length > 1 && all.some((v) => v !== all[0])) return { kind: 'ambiguous' };
  return { kind: 'found', value: all[0] };
}

/** The subprotocol header contains a credential carrier (used by identity/log redaction). */
export function isTokenChars(s: string): boolean {
  return TOKEN.test(s);
}
