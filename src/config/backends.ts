/**
 * Config keys of the backend services (issue 5): the `tcp` service (a
 * websockify-style bridge to a TCP or TLS socket) and the `websocket` service
 * (a ws:// or wss:// backend reached with our own codec in client role).
 *
 * These are field objects, not schemas: `service.ts` spreads them next to the
 * fields every service shares, so this file never imports `service.ts` (no cycle).
 */
import { z } from 'zod';
import { duration, size } from './units.js';

/** Verification material for a TLS backend. Verification itself can not be turned off. */
export const backendTlsSchema = z.strictObject({
  /** PEM file(s) of the CA(s) that sign the backend's certificate; the system store when absent. */
  ca: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional()
    .transform((v) => (v === undefined ? undefined : Array.isArray(v) ? v : [v])),
  /** Name the backend's certificate must carry (and SNI); the URL's host when absent. */
  servername: z.string().min(1).optional(),
  /** Client certificate (PEM file) the gateway presents to the backend. */
  cert: z.string().min(1).optional(),
  /** Private key (PEM file) of the client certificate. */
  key: z.string().min(1).optional(),
}).refine((t) => (t.cert === undefined) === (t.key === undefined), {
  message: 'cert and key go together',
});

export type BackendTlsConfig = z.output<typeof backendTlsSchema>;

function urlWithSchemes(schemes: string[], needPort: boolean) {
  return z.string().superRefine((v, ctx) => {
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      ctx.addIssue({ code: 'custom', message: `not a URL: ${JSON.stringify(v)} (e.g. ${schemes[0]}//host:port)` });
      return;
    }
    if (!schemes.includes(u.protocol)) {
      ctx.addIssue({ code: 'custom', message: `the scheme must be one of ${schemes.map((s) => s + '//').join(', ')}` });
    }
    if (u.hostname === '') ctx.addIssue({ code: 'custom', message: 'the URL has no host' });
    if (needPort && u.port === '') ctx.addIssue({ code: 'custom', message: 'the URL needs a port' });
    if (u.username !== '' || u.password !== '') {
      // Credentials in a URL end up in logs and error messages.
      ctx.addIssue({ code: 'custom', message: 'no credentials in the backend URL' });
    }
  });
}

const backendCommon = {
  /** Time to connect (and, for TLS, verify) plus, for WebSocket, the upgrade answer. Over → 504. */
  connect_timeout: duration().default(10_000)
    .refine((ms) => ms > 0, 'must be more than 0'),
  tls: backendTlsSchema.optional(),
};

export const tcpServiceFields = {
  /** tcp://host:port, or tls://host:port for a TLS backend (certificate verified). */
  backend: urlWithSchemes(['tcp:', 'tls:'], true),
  /** What a text message from the client does: `reject` closes with 1003, `pass` sends its UTF-8 bytes. */
  text: z.enum(['reject', 'pass']).default('reject'),
  /** Backend bytes are coalesced into binary messages of at most this size. */
  frame_size: size().default(64 * 1024)
    .refine((n) => n >= 1 && n <= 16 * 1024 * 1024, 'between 1 byte and 16 MiB'),
  ...backendCommon,
};

export const websocketServiceFields = {
  /** ws://host[:port]/path or wss://host[:port]/path (certificate verified). */
  backend: urlWithSchemes(['ws:', 'wss:'], false),
  /**
   * Subprotocols the gateway may offer the backend: those the client offered
   * that are in this list. When absent, only the subprotocol chosen at
   * admission (if any) is offered.
   */
  backend_protocols: z.array(z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'not a subprotocol token')).optional(),
  ...backendCommon,
};
