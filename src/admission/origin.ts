/**
 * Check 3: the service's origin policy (RFC 6454, RFC 6455 §10.2). Exactly one
 * well-formed Origin, serialised and looked up in the service's allow-list.
 * `self` in the list admits the gateway's own origin (connection scheme + Host),
 * for pages it serves itself. `null` is always refused; a missing Origin only where the service sets
 * `allow_missing_origin` (non-browser clients — browsers always send one).
 * Refusals are 403: `origin_missing`, `origin_null`, `origin_malformed`, `origin_not_allowed`.
 */
import { OriginAllowList, parseOrigin } from '../http/origin.js';
import { Rejection, type AdmissionCheck, type CheckFactory } from './types.js';
import { countHeader } from './headers.js';

export const originCheck: CheckFactory = (service) => {
  const allowed = new OriginAllowList(service.origins);
  const allowMissing = service.allow_missing_origin;
  const check: AdmissionCheck = {
    name: 'origin',
    check(ctx) {
      const lines = countHeader(ctx.request.rawHeaders, 'origin');
      if (lines === 0) {
        if (allowMissing) {
          ctx.origin = null;
          return undefined;
        }
        return new Rejection(403, 'origin_missing', 'an Origin header is required');
      }
      const value = ctx.request.headers.origin;
      if (lines > 1 || typeof value !== 'string') return new Rejection(403, 'origin_malformed', 'exactly one Origin header is allowed');
      // The common case, a listed origin sent exactly as listed: no parse needed (see hasExact).
      if (allowed.hasExact(value)) {
        ctx.origin = value;
        return undefined;
      }
      if (value.trim().toLowerCase() === 'null') return new Rejection(403, 'origin_null', 'opaque origins are not allowed');
      const parsed = parseOrigin(value);
      if (!parsed) return new Rejection(403, 'origin_malformed', 'the Origin header is not a serialised origin');
      if (!allowed.permits(parsed, { secure: ctx.request.secure, host: ctx.request.headers.host })) {
        return new Rejection(403, 'origin_not_allowed', 'this origin may not open this service');
      }
      ctx.origin = parsed.serialized;
      return undefined;
    },
  };
  return check;
};
