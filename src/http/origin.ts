/**
 * Web origins (RFC 6454): parse, serialise and match. Pure functions shared by
 * the config schema (to validate allow-lists) and the origin admission check.
 *
 * An origin is compared only in its serialised form — lowercase scheme and
 * host, IDN host in punycode, default port elided — never as a substring or an
 * unanchored pattern, so `https://app.example.com.evil.net` can never pass for
 * `https://app.example.com`.
 */
import { domainToASCII } from 'node:url';

/** Only web schemes: browsers send http(s) origins for pages that open WebSockets. */
const SCHEMES = new Set(['http', 'https']);
/** Longest Origin header value we look at; longer ones are malformed (DNS names stop at 253). */
export const MAX_ORIGIN_LENGTH = 1024;

/** `scheme://host[:port]`, nothing else: no userinfo, path, query, fragment or trailing slash. */
const ORIGIN_SYNTAX = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(\[[0-9A-Fa-f:.]+\]|[^\s/?#@:[\]]+)(?::(\d{1,5}))?$/;
/** Dot-separated non-empty labels of letters, digits and hyphens (optional trailing dot). */
const ASCII_HOST = /^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?$/;

export interface ParsedOrigin {
  scheme: string;
  /** Lowercase ASCII host; IPv6 literals keep their brackets. */
  host: string;
  /** Explicit non-default port, '' for the scheme's default. */
  port: string;
  /** The RFC 6454 serialisation, e.g. `https://xn--bcher-kva.example:8443`. */
  serialized: string;
}

/**
 * Parse an Origin header value as a browser would send it: ASCII only. Returns
 * undefined for anything that is not exactly one well-formed serialised origin
 * (including `null`, lists, paths, userinfo and raw Unicode hosts).
 */
export function parseOrigin(value: string): ParsedOrigin | undefined {
  if (value.length === 0 || value.length > MAX_ORIGIN_LENGTH) return undefined;
  const m = ORIGIN_SYNTAX.exec(value);
  if (!m) return undefined;
  const host = m[2];
  if (!host.startsWith('[') && !ASCII_HOST.test(host)) return undefined;
  return normalise(m[1], host, m[3]);
}

function normalise(scheme: string, host: string, port: string | undefined): ParsedOrigin | undefined {
  const s = scheme.toLowerCase();
  if (!SCHEMES.has(s)) return undefined;
  let url: URL;
  try {
    url = new URL(`${s}://${host}${port !== undefined ? `:${port}` : ''}`);
  } catch {
    return undefined;
  }
  if (url.hostname === '' || url.username !== '' || url.password !== '') return undefined;
  // URL lowercases, converts IDN to punycode, canonicalises IP literals and elides default ports.
  return { scheme: s, host: url.hostname, port: url.port, serialized: url.origin };
}

/**
 * The allow-list keyword for "the gateway's own origin": the scheme of the
 * connection (https on TLS) with the request's Host. For pages the gateway
 * serves itself (the index page, demos).
 */
export const SELF = 'self';

/** One entry of an allow-list: an exact origin, a `scheme://*.domain[:port]` pattern, or `self`. */
export type OriginRule =
  | { kind: 'self' }
  | { kind: 'exact'; origin: string }
  | { kind: 'subdomains'; scheme: string; suffix: string; port: string; pattern: string };

/**
 * Compile a configured allow-list entry. Config may spell hosts in Unicode
 * (converted with `domainToASCII`) and in any case. Throws with a message for
 * entries that cannot be allowed: `null`, paths, non-web schemes, a wildcard
 * anywhere but as the whole leftmost label, or a wildcard over a single label
 * (`https://*.com`).
 */
export function compileOriginRule(entry: string): OriginRule {
  const value = entry.trim();
  if (value.toLowerCase() === SELF) return { kind: 'self' };
  if (value.toLowerCase() === 'null') {
    throw new Error('the opaque origin "null" cannot be allowed (sandboxed frames, file: and data: pages all send it)');
  }
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#@]+?)(?::(\d{1,5}))?$/.exec(value);
  if (!m) throw new Error(`not an origin: ${JSON.stringify(entry)} (use scheme://host[:port], no path or trailing slash)`);
  const scheme = m[1].toLowerCase();
  if (!SCHEMES.has(scheme)) throw new Error(`unsupported scheme ${JSON.stringify(m[1])} (only http and https origins)`);
  let host = m[2];
  let wildcard = false;
  if (host.startsWith('*.')) {
    wildcard = true;
    host = host.slice(2);
  }
  if (host.includes('*')) throw new Error(`a wildcard must be the whole leftmost label, as in https://*.example.com: ${JSON.stringify(entry)}`);
  if (!host.startsWith('[')) {
    const ascii = domainToASCII(host);
    if (ascii === '' || !ASCII_HOST.test(ascii)) throw new Error(`not a valid host name: ${JSON.stringify(host)}`);
    host = ascii;
  } else if (wildcard) {
    throw new Error('a wildcard cannot apply to an IP address');
  }
  const parsed = normalise(scheme, host, m[3]);
  if (!parsed) throw new Error(`not an origin: ${JSON.stringify(entry)}`);
  if (!wildcard) return { kind: 'exact', origin: parsed.serialized };
  if (!parsed.host.replace(/\.$/, '').includes('.')) {
    throw new Error(`a wildcard needs at least two labels after it (https://*.example.com), got ${JSON.stringify(entry)}`);
  }
  if (/^[0-9.]+$/.test(parsed.host)) throw new Error('a wildcard cannot apply to an IP address');
  const pattern = `${scheme}://*.${parsed.host}${parsed.port ? `:${parsed.port}` : ''}`;
  return { kind: 'subdomains', scheme, suffix: `.${parsed.host}`, port: parsed.port, pattern };
}

/** Serialised form of a rule, for config output and logs. */
export function ruleToString(rule: OriginRule): string {
  return rule.kind === 'self' ? SELF : rule.kind === 'exact' ? rule.origin : rule.pattern;
}

/** The origin a page served by this gateway has: connection scheme + Host header. */
export function selfOrigin(secure: boolean, host: string | undefined): string | undefined {
  if (host === undefined) return undefined;
  return parseOrigin(`${secure ? 'https' : 'http'}://${host.trim()}`)?.serialized;
}

/** A compiled allow-list: a Set for exact origins, a short list of suffix rules. */
export class OriginAllowList {
  private readonly exact = new Set<string>();
  private readonly subdomains: Array<Extract<OriginRule, { kind: 'subdomains' }>> = [];
  /** `self` is listed: compare with the request's own origin (see `allowsSelf`). */
  readonly self: boolean = false;

  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const rule = compileOriginRule(e);
      if (rule.kind === 'self') this.self = true;
      else if (rule.kind === 'exact') this.exact.add(rule.origin);
      else this.subdomains.push(rule);
    }
  }

  get size(): number {
    return this.exact.size + this.subdomains.length + (this.self ? 1 : 0);
  }

  /**
   * The whole verdict for one request: listed exactly or by pattern, or `self`
   * is listed and the origin is the request's own (connection scheme + Host).
   */
  permits(origin: ParsedOrigin, request: { secure: boolean; host: string | undefined }): boolean {
    return this.allows(origin) || (this.self && origin.serialized === selfOrigin(request.secure, request.host));
  }

  /**
   * True when `value` is, character for character, one of the exact origins
   * listed. Those are stored serialised, and serialising is idempotent, so such
   * a value parses to itself and `allows` would say yes: callers may skip the
   * parse for it. Anything else (other case, default port spelled out,
   * Unicode, patterns) still goes through `parseOrigin` + `allows`.
   */
  hasExact(value: string): boolean {
    return value.length <= MAX_ORIGIN_LENGTH && this.exact.has(value);
  }

  allows(origin: ParsedOrigin): boolean {
    if (this.exact.has(origin.serialized)) return true;
    if (origin.host.startsWith('[')) return false;
    for (const r of this.subdomains) {
      // The suffix starts with a dot, so only whole labels match; the apex itself does not.
      if (r.scheme === origin.scheme && r.port === origin.port
        && origin.host.length > r.suffix.length && origin.host.endsWith(r.suffix)) return true;
    }
    return false;
  }
}
