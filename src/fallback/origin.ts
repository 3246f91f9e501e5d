/**
 * How the fallback asks "may this Origin talk to this service?" on every
 * request (the open request goes through the admission pipeline's own origin
 * check). The policy in use is service-origin.ts: the same allow-list and
 * `self` rule as the admission check, so there is one origin verdict for every
 * transport; tests may pass another.
 */
import type { ServiceConfig } from '../config/schema.js';
import { parseOrigin } from '../http/origin.js';

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
