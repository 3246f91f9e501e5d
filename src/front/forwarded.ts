/**
 * Which address is the client? The TCP peer — unless that peer is a trusted
 * proxy (`trusted_proxies` CIDRs), in which case the ONE forwarding header the
 * proxy writes (`forwarded_header`: X-Forwarded-For by default, or Forwarded,
 * RFC 7239) is read from the right, skipping hops that are themselves trusted,
 * and the first untrusted hop is the client. The other header is never read:
 * a proxy that appends to X-Forwarded-For passes a client's own `Forwarded`
 * through untouched, so believing it would let the client choose its address.
 * With no trusted proxies configured (the default) both are ignored entirely.
 */
import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { CidrSet } from '../http/cidr.js';

export interface ClientAddress {
  address: string;
  port: number;
  /** Where the address came from. */
  source: 'socket' | 'proxy-protocol' | 'forwarded' | 'x-forwarded-for' | 'hop';
}

/** Most hops read from a forwarding header; longer chains are cut at the left. */
const MAX_HOPS = 32;

/** The forwarding header a trusted proxy writes (config `forwarded_header`). */
export type ForwardedHeader = 'x-forwarded-for' | 'forwarded';

export function resolveClientAddress(peer: ClientAddress, headers: IncomingHttpHeaders, trusted: CidrSet,
  header: ForwardedHeader = 'x-forwarded-for'): ClientAddress {
  if (trusted.size === 0 || !trusted.has(peer.address)) return peer;
  const value = headerString(headers[header]);
  if (value === undefined) return peer;
  const hops = header === 'forwarded' ? forwardedFor(value) : xForwardedFor(value);
  if (hops.length === 0) return peer;
  const source = header;
  let nearest = peer;
  for (let i = hops.length - 1; i >= 0 && i >= hops.length - MAX_HOPS; i--) {
    const hop = hops[i];
    // Garbage in the chain: believe only what the nearest trusted hop vouches for.
    if (hop === undefined) return nearest;
    const candidate: ClientAddress = { address: hop.address, port: hop.port, source };
    if (!trusted.has(hop.address)) return candidate;
    nearest = candidate;
  }
  return nearest;
}

function headerString(v: string | string[] | undefined): string | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v.join(',') : v;
}

type Hop = { address: string; port: number } | undefined;

function xForwardedFor(value: string): Hop[] {
  return value.split(',').slice(-MAX_HOPS).map((s) => parseNode(s.trim()));
}

/** `Forwarded: for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"` → the `for` of each element. */
function forwardedFor(value: string): Hop[] {
  const hops: Hop[] = [];
  for (const element of value.split(',').slice(-MAX_HOPS)) {
    let found: Hop = undefined;
    for (const pair of element.split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      if (pair.slice(0, eq).trim().toLowerCase() !== 'for') continue;
      let v = pair.slice(eq + 1).trim();
      if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
      found = parseNode(v);
    }
    hops.push(found);
  }
  return hops;
}

/** An address with an optional port: `1.2.3.4`, `1.2.3.4:80`, `[::1]:80`, `::1`. */
function parseNode(s: string): Hop {
  if (isIP(s) !== 0) return { address: s, port: 0 };
  const v6 = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(s);
  if (v6 && isIP(v6[1]) === 6) return { address: v6[1], port: v6[2] ? Number(v6[2]) : 0 };
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(s);
  if (v4 && isIP(v4[1]) === 4) return { address: v4[1], port: Number(v4[2]) };
  return undefined;
}
