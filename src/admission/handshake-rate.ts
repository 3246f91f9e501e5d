/**
 * Check 1: handshakes per client address per second (token bucket). The first
 * check, so a flood is refused before any other work is done for it.
 * Over → 429 `handshake_rate` with Retry-After (whole seconds until a token).
 */
import { addressKey } from '../http/cidr.js';
import { Rejection, type AdmissionCheck, type CheckFactory } from './types.js';
import { admissionStateOf } from './state.js';

export const handshakeRateCheck: CheckFactory = (_service, env) => {
  const buckets = admissionStateOf(env).handshakeBuckets(env.config.limits);
  const check: AdmissionCheck = {
    name: 'handshake-rate',
    check(ctx) {
      const waitMs = buckets.take(addressKey(ctx.request.remoteAddress), Date.now());
      if (waitMs === 0) return undefined;
      const seconds = String(Math.max(1, Math.ceil(waitMs / 1000)));
      return new Rejection(429, 'handshake_rate', 'too many handshakes from this address', { 'Retry-After': seconds });
    },
  };
  return check;
};
