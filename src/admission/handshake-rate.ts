/**
 * Check 1: handshakes per client address per second (token bucket). The first
 * check, so a flood is refused before any other work is done for it.
 * Over → 429 `handshake_rate` with Retry-After (whole seconds until a token).
 * `handshake_rate` or `handshake_burst` 0: no limit (the check is left out).
 *
 * The buckets are the shared state's: in-process they answer at once (no
 * promise); shared by a cluster they answer after a round trip.
 */
import { addressKey } from '../http/cidr.js';
import { exemptAddresses } from '../config/limits.js';
import { Rejection, type AdmissionCheck, type CheckFactory } from './types.js';
import { sharedStateOf } from './state.js';
import { SHARED_ADDRESS_HINT } from './connection-limit.js';

export const handshakeRateCheck: CheckFactory = (_service, env) => {
  const buckets = sharedStateOf(env).handshakes;
  const config = env.config.limits;
  if (config.handshake_rate === 0 || config.handshake_burst === 0) return undefined;
  const limits = { rate: config.handshake_rate, burst: config.handshake_burst };
  const exempt = exemptAddresses(config);
  const verdict = (waitMs: number): Rejection | undefined => {
    if (waitMs === 0) return undefined;
    const seconds = String(Math.max(1, Math.ceil(waitMs / 1000)));
    return new Rejection(429, 'handshake_rate', 'too many handshakes from this address', { 'Retry-After': seconds },
      `limits.handshake_rate = ${config.handshake_rate}/s, limits.handshake_burst = ${config.handshake_burst}${SHARED_ADDRESS_HINT}`);
  };
  const check: AdmissionCheck = {
    name: 'handshake-rate',
    check(ctx) {
      if (exempt.has(ctx.request.remoteAddress)) return undefined;
      const waitMs = buckets.take(addressKey(ctx.request.remoteAddress), limits);
      return typeof waitMs === 'number' ? verdict(waitMs) : waitMs.then(verdict);
    },
  };
  return check;
};
