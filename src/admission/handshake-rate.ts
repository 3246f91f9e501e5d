/**
 * Check 1: handshakes per client address per second (token bucket). The first
 * check, so a flood is refused before any other work is done for it.
 * Over → 429 `handshake_rate` with Retry-After (whole seconds until a token).
 */
import { addressKey } from '../http/cidr.js';
import { Rejection, type AdmissionCheck, type CheckFactory } from './types.js';
import { admissionStateOf } from './state.js';
import { SHARED_ADDRESS_HINT } from './connection-limit.js';
import { monoClock } from '../clock.js';

export const handshakeRateCheck: CheckFactory = (_service, env) => {
  const buckets = admissionStateOf(env).handshakeBuckets(env.config.limits);
  const check: AdmissionCheck = {
    name: 'handshake-rate',
    check(ctx) {
      // The monotonic clock: a step of the wall clock must neither freeze the refill nor fill every bucket.
      const waitMs = buckets.take(addressKey(ctx.request.remoteAddress), monoClock());
      if (waitMs === 0) return undefined;
      const seconds = String(Math.max(1, Math.ceil(waitMs / 1000)));
      return new Rejection(429, 'handshake_rate', 'too many handshakes from this address', { 'Retry-After': seconds },
        `limits.handshake_rate = ${env.config.limits.handshake_rate}/s, limits.handshake_burst = ${env.config.limits.handshake_burst}${SHARED_ADDRESS_HINT}`);
    },
  };
  return check;
};
