/**
 * How the fallback asks "may this Origin talk to this service?" on every
 * request (the open request goes through the admission pipeline's own origin
 * check). A function the composition root can swap for the admission module's
 * policy, so there is one origin policy for every transport.
 */
import type { ServiceConfig } from '../config/schema.js';

/** What of a request an origin policy may look at besides the Origin itself (for `self`). */
export interface OriginRequestInfo { secure: boolean; host: string | undefined }

/**
 * `origin` is the serialised origin (RFC 6454 §6.2), or null when the request
 * carried none. Returns true when the service accepts requests from it.
 */
export type OriginPolicy = (service: ServiceConfig, origin: string | null, request: OriginRequestInfo) => boolean;

/**
 * Stand-in until a policy is injected: a service's `origins` list when the
 * config has one (exact, serialised), otherwise any well-formed origin. The
 * session binding (endpoints.ts) still pins every request to the origin
 * admitted at open, so this only decides CORS preflights.
 */
export const standInOriginPolicy: OriginPolicy = (service, origin) => {
  const list = (service as { origins?: unknown }).origins;
  if (Array.isArray(list)) return origin !== null && list.some((o) => typeof o === 'string' && serializeOrigin(o) === origin);
  return true;
};

/**
 * The serialised form of an `Origin` header: `scheme://host[:port]`, lower
 * case, default port dropped. Returns null for an absent header and 'invalid'
 * for anything that is not exactly one http(s) origin — including `null`
 * (opaque origins are never trusted) and the RFC 6454 list form.
 */
export function serializeOrigin(value: string | string[] | undefined): string | null | 'invalid' {
  if (value === undefined) return null;
  if (Array.isArray(value) || value.length > 1024) return 'invalid';
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^\s/?#]+$/.test(value)) return 'invalid';
  let url: URL;
  try { url = new URL(value); } catch { return 'invalid'; }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'invalid';
  if (url.username || url.password) return 'invalid';
  return url.origin;
}
