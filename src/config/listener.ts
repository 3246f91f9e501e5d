/** A `listen` entry: one TCP (optionally TLS) socket the gateway accepts on. */
import { z } from 'zod';
import { duration } from './units.js';
import { validHostHeader } from '../http/host.js';

/** A port as a number, or as a numeric string (so "${PORT}" works). */
export const port = () =>
  z.union([z.number(), z.string().regex(/^\d+$/, 'not a port number').transform(Number)])
    .pipe(z.number().int().min(0).max(65535));

const file = () => z.string().min(1, 'a file path');

export const sniEntrySchema = z.strictObject({
  /** Server name sent by the client (SNI), e.g. `api.example.com` or `*.example.com` (one label). */
  servername: z.string().min(1).transform((s) => s.toLowerCase())
    .refine((s) => /^(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*$/.test(s), 'not a server name'),
  cert: file(),
  key: file(),
});

export const tlsSchema = z.strictObject({
  /** PEM certificate chain and key served when no `sni` entry matches. */
  cert: file(),
  key: file(),
  /** Further certificates chosen by the server name the client asks for. */
  sni: z.array(sniEntrySchema).default([]),
  /** Oldest TLS version accepted. */
  min_version: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  /** PEM CA bundle client certificates are verified against (mTLS). */
  ca: file().optional(),
  /** none: no client certificate; optional: verified when sent; required: handshake fails without one. */
  client_certificate: z.enum(['none', 'optional', 'required']).default('none'),
  /** A client must complete the TLS handshake within this time. */
  handshake_timeout: duration().default(10_000),
  /** Reload the certificate files when they change (and always on SIGHUP). */
  watch: z.boolean().default(true),
}).refine((t) => t.client_certificate === 'none' || t.ca !== undefined, {
  message: 'client_certificate needs a ca file to verify against', path: ['ca'],
});

const hstsObject = z.strictObject({
  /** Seconds browsers remember to use HTTPS only. */
  max_age: z.number().int().min(0).default(31_536_000),
  include_subdomains: z.boolean().default(false),
  preload: z.boolean().default(false),
});

export const listenerSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: port(),
  /**
   * Host names (Host header, without port) this listener answers for; a
   * request naming another gets 421. Any when absent. Set it on listeners
   * browsers can reach: it is what stops a DNS-rebinding page from reaching
   * services that allow `self` or no Origin.
   */
  hosts: z.array(z.string().min(1).transform((h) => h.toLowerCase().replace(/\.$/, ''))
    .refine((h) => (validHostHeader(h) && !h.includes(':')) || /^\[[0-9a-f:.]+\]$/.test(h), 'a host name or [IPv6 address], without port')).min(1).optional(),
  /** Serve TLS on this listener. */
  tls: tlsSchema.optional(),
  /** Expect a PROXY protocol (v1 or v2) header on every connection; connections without one are dropped. */
  proxy_protocol: z.boolean().default(false),
  /** Send Strict-Transport-Security on HTTP responses (TLS listeners only). */
  hsts: z.union([z.boolean(), hstsObject]).optional()
    .transform((h) => (h === undefined || h === false ? undefined : h === true ? hstsObject.parse({}) : h)),
  /**
   * A plain listener that only redirects: every request gets 308 to the same
   * host and path on https (`port` of the https listener, default 443).
   */
  redirect_http: z.union([z.boolean(), z.strictObject({ port: port().default(443) })]).optional()
    .transform((r) => (r === undefined || r === false ? undefined : r === true ? { port: 443 } : r)),
}).superRefine((l, ctx) => {
  if (l.hsts && !l.tls) ctx.addIssue({ code: 'custom', path: ['hsts'], message: 'hsts needs a tls listener' });
  if (l.redirect_http && l.tls) ctx.addIssue({ code: 'custom', path: ['redirect_http'], message: 'redirect_http is for a plain (non-tls) listener' });
});

export type ListenerConfig = z.output<typeof listenerSchema>;
export type TlsConfig = z.output<typeof tlsSchema>;
export type HstsConfig = z.output<typeof hstsObject>;
