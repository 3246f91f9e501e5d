/**
 * How the fallback asks "may this Origin talk to this service?" on every
 * request (the open request goes through the admission pipeline's own origin
 * check). The policy in use is `serviceOriginPolicy`: the same allow-list and
 * `self` rule as the admission check, so there is one origin verdict for every
 * transport; tests may pass another.
 */
import type { ServiceConfig } from '../config/schema.js';
import { OriginAllowList, parseOrigin } from '../http/origin.js';

/** What of a request an origin policy may look at besides the Origin itself (for `self`). */
export interface OriginRequestInfo { secure: boolean; host: string | undefined }

/**
 * `origin` is the serialised origin (RFC 6454 §6.2), or null when the request
 * carried none. Returns true when the service accepts requests from it.
 */
export type OriginPolicy = (service: ServiceConfig, origin: string | null, request: OriginRequestInfo) => boolean;

/**
 * The serialised form of an `Origin` header (the same parser the admission
 * origin check uses, so both transports read an Origin alike). Returns null for
 * an absent header and 'invalid' for anything that is not exactly one http(s)
 * origin — including `null` (opaque origins are never trusted), the RFC 6454
 * list form and raw Unicode hosts.
 */
export function serializeOrigin(value: string | string[] | undefined): string | null | 'invalid' {
  if (value === undefined) return null;
  if (Array.isArray(value)) return 'invalid';
  return parseOrigin(value)?.serialized ?? 'invalid';
}

const compiled = new WeakMap<ServiceConfig, OriginAllowList>();

/**
 * The per-request origin policy from the service's allow-list (`origins`, with
 * subdomain patterns), so CORS answers and session requests follow exactly the
 * rules the origin check applies to the open request and the WebSocket
 * upgrade. Compiled once per service config object.
 */
export const serviceOriginPolicy: OriginPolicy = (service, origin, request) => {
  if (origin === null) return service.allow_missing_origin;
  let list = compiled.get(service);
  if (!list) { list = new OriginAllowList(service.origins); compiled.set(service, list); }
  const parsed = parseOrigin(origin);
  return parsed !== undefined && list.permits(parsed, request);
};
