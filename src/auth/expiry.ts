/**
 * Connections do not outlive their credentials. Given an attached Channel (any
 * transport) and the Admission it came in with, closes it with 1008
 * `credential expired`:
 *  - at `principal.expiresAt` + the service's `auth.grace` (JWT `exp`, a
 *    ticket's session expiry), and
 *  - when a periodic re-check of a revocable credential (`forward`, every
 *    `revalidate`) says it is no longer valid.
 *
 * The composition root registers it as a front-door channel hook:
 *   front.addChannelHook((channel, admission, ctx) => watchCredentials(channel, admission, { audit: ctx.audit }))
 * All connections share one DeadlineScheduler. Watches end when the channel
 * closes or its Admission is released.
 */
import type { Admission, Principal } from '../admission/types.js';
import type { Channel } from '../channel.js';
import type { Audit } from '../observe/audit.js';
import { recheckOf } from './recheck.js';
import { DeadlineScheduler, type ScheduledTask } from './scheduler.js';

export const CREDENTIAL_EXPIRED_CODE = 1008;
export const CREDENTIAL_EXPIRED_REASON = 'credential expired';

const scheduler = new DeadlineScheduler();
/** Watches by principal, so releasing the Admission can end them. */
const watches = new WeakMap<Principal, () => void>();

export interface WatchDeps {
  audit?: Audit;
  /** For tests: a scheduler of their own. */
  scheduler?: DeadlineScheduler;
}

/** Stops watching the connection admitted with `principal` (idempotent). */
export function stopWatching(principal: Principal | undefined): void {
  if (!principal) return;
  const stop = watches.get(principal);
  if (stop) stop();
}

/**
 * Starts watching `channel`. Returns a function that stops the watch (also
 * stopped by `stopWatching(admission.principal)`, which the authenticate check
 * registers as a release action of the Admission).
 */
export function watchCredentials(channel: Channel, admission: Admission, deps: WatchDeps = {}): () => void {
  const principal = admission.principal;
  if (!principal) return () => {};
  const sched = deps.scheduler ?? scheduler;
  let expiryTask: ScheduledTask | undefined;
  let recheckTask: ScheduledTask | undefined;
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    expiryTask?.cancel();
    recheckTask?.cancel();
    expiryTask = recheckTask = undefined;
    if (watches.get(principal) === stop) watches.delete(principal);
  };
  watches.set(principal, stop);
  channel.whenClosed(stop);

  const expire = (why: 'expired' | 'revoked'): void => {
    if (stopped) return;
    stop();
    if (channel.closed) return;
    deps.audit?.violation(why === 'expired' ? 'credential_expired' : 'credential_revoked', {
      service: admission.service.name,
      client: admission.client.address,
      principal: principal.id,
      connection: admission.id,
      code: CREDENTIAL_EXPIRED_CODE,
    });
    channel.close(CREDENTIAL_EXPIRED_CODE, CREDENTIAL_EXPIRED_REASON);
  };

  if (principal.expiresAt !== undefined) {
    const grace = admission.service.auth?.grace ?? 0;
    expiryTask = sched.schedule(principal.expiresAt + grace, () => expire('expired'));
  }

  const recheck = recheckOf(principal);
  if (recheck && recheck.interval > 0) {
    const next = (): void => {
      if (stopped) return;
      recheckTask = sched.schedule(Date.now() + recheck.interval, () => {
        if (stopped || channel.closed) { stop(); return; }
        recheck.recheck().then(
          (result) => { if (result === 'invalid') expire('revoked'); else next(); },
          () => next(),
        );
      });
    };
    next();
  }
  return stop;
}
