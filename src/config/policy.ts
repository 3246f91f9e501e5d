/**
 * Config keys of the admission issue (3): fields spread into every service, and root sections.
 * Validation uses the same pure parsers the admission checks run (src/http/), so a
 * config that loads is a config the checks can compile.
 */
import { z } from 'zod';
import { compileOriginRule, ruleToString } from '../http/origin.js';
import { isToken } from '../http/tokens.js';
import { parseCidr } from '../http/cidr.js';
import { limit, sizeLimit } from './limits.js';

/** Most subprotocols a client may offer, and the most a service may list. */
export const MAX_SUBPROTOCOL_TOKENS = 16;
/**
 * Largest Sec-WebSocket-Protocol header (all lines together). 4 KiB rather than
 * the 1 KiB of plain subprotocol lists: a browser can only carry a JWT there.
 */
export const MAX_SUBPROTOCOL_BYTES = 4096;

const originList = z.array(z.string()).transform((entries, ctx) => {
  const out: string[] = [];
  entries.forEach((e, i) => {
    try {
      out.push(ruleToString(compileOriginRule(e)));
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: [i], message: (err as Error).message });
    }
  });
  return out;
});

export const policyServiceFields = {
  /**
   * Web origins allowed to open this service: exact serialised origins
   * (`https://app.example.com`, `http://localhost:8080`) and subdomain patterns
   * (`https://*.example.com`), and `self` for the gateway's own origin (the
   * connection's scheme with the request's Host: pages the gateway serves).
   * Empty: no browser origin is allowed.
   */
  origins: originList.default([]),
  /** Admit requests without an Origin header (non-browser clients). Browsers always send one. */
  allow_missing_origin: z.boolean().default(false),
  /** Subprotocols this service speaks, in preference order; the first one the client offered is chosen. */
  subprotocols: z.array(z.string().refine(isToken, 'not a valid subprotocol token'))
    .max(MAX_SUBPROTOCOL_TOKENS).default([]),
  /** Refuse (400) clients that offer none of `subprotocols`. */
  require_subprotocol: z.boolean().default(false),
  /** Open connections to this service at once. Over → 503. Unlimited when absent or 0 (the total still applies). */
  max_connections: limit('Open connections to this service at once (absent: no limit; limits.connections_total still applies).').optional(),
  /** Override of limits.message_rate for this service (0: this service's connections are not limited). */
  message_rate: limit('Override of limits.message_rate for this service.').optional(),
  /** Override of limits.byte_rate for this service (0: this service's connections are not limited). */
  byte_rate: sizeLimit('Override of limits.byte_rate for this service.').optional(),
};

export const policyRootFields = {
  /**
   * Peers (addresses or CIDR ranges) whose X-Forwarded-For / Forwarded headers
   * are believed. Empty by default: those headers are ignored and the socket
   * peer is the client.
   */
  trusted_proxies: z.array(z.string().refine((c) => parseCidr(c) !== undefined, 'not an IP address or CIDR range')).default([]),
  /**
   * The one forwarding header the trusted proxies write (nginx
   * `$proxy_add_x_forwarded_for`, HAProxy `option forwardfor`, Envoy:
   * `x-forwarded-for`; a proxy that writes RFC 7239: `forwarded`). The other is
   * never read: proxies pass a header they do not write through untouched, so
   * a client could choose its address with it.
   */
  forwarded_header: z.enum(['x-forwarded-for', 'forwarded']).default('x-forwarded-for'),
};
