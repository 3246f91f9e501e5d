/**
 * Connections do not outlive their credentials. Given an attached Channel (any
 * transport) and the Admission it came in with, closes it with 1008
 * `credential expired`:
 *  - at `principal.expiresAt` + the service's `auth.grace` (JWT `exp`, a
 *    ticket's session expiry), and
 *  - when a periodic re-check of a revocable credential (`forward`, every
 *    `revalidate`) says it is no longer valid.
 *
 * The composition root registers it as a front-door channel hook, with
 * `unwatchChannel` as the end hook:
 *   front.addChannelHook((channel, admission, ctx) => watchCredentials(channel, admission, { audit: ctx.audit }), unwatchChannel)
 * All connections share one DeadlineScheduler. A watch is one object, which is
 * its own deadline target: no closures or close listeners per connection, as
 * an authenticated idle connection should cost little more than an anonymous
 * one. Watches end when the channel ends or its Admission is released.
 */
import type { Admission, Principal } from '../admission/types.js';
import type { Channel } from '../channel.js';
import type { Audit } from '../observe/audit.js';
import { recheckOf, type CredentialRecheck } from './recheck.js';
import { DeadlineScheduler, type DeadlineTarget, type ScheduledTask } from './scheduler.js';

export const CREDENTIAL_EXPIRED_CODE = 1008;
export const CREDENTIAL_EXPIRED_REASON = 'credential expired';

const scheduler = new DeadlineScheduler();
/** Watches by principal, so releasing the Admission can end them. */
const watches = new WeakMap<Principal, CredentialWatch>();

export interface WatchDeps {
  audit?: Audit;
  /** For tests: a scheduler of their own. */
  scheduler?: DeadlineScheduler;
}

/** Stops watching the connection admitted with `principal` (idempotent). */
export function stopWatching(principal: Principal | undefined): void {
  if (!principal) return;
  watches.get(principal)?.stop();
}

/** The front door's end hook: the channel has ended, so has its watch. */
export function unwatchChannel(channel: Channel): void {
  stopWatching(channel.admission?.principal);
}

/**
 * Starts watching `channel` until `stopWatching(admission.principal)` (a
 * release action of the Admission, registered by the authenticate check) or
 * `unwatchChannel(channel)`.
 */
export function watchCredentials(channel: Channel, admission: Admission, deps: WatchDeps = {}): void {
  const principal = admission.principal;
  if (!principal) return;
  const recheck = recheckOf(principal);
  const watchesExpiry = principal.expiresAt !== undefined;
  const rechecks = recheck !== undefined && recheck.interval > 0;
  if (!watchesExpiry && !rechecks) return;
  const watch = new CredentialWatch(channel, admission, principal, deps.audit, deps.scheduler ?? scheduler, rechecks ? recheck : undefined);
  watches.get(principal)?.stop();
  watches.set(principal, watch);
  watch.start(watchesExpiry ? principal.expiresAt! + (admission.service.auth?.grace ?? 0) : undefined);
}

class CredentialWatch implements DeadlineTarget {
  private expiry: ScheduledTask | undefined;
  private recheckTask: ScheduledTask | undefined;
  private stopped = false;

  constructor(
    private readonly channel: Channel,
    private readonly admission: Admission,
    private readonly principal: Principal,
    private readonly audit: Audit | undefined,
    private readonly sched: DeadlineScheduler,
    private readonly recheck: CredentialRecheck | undefined,
  ) {}

  /** Schedules the expiry (epoch ms, if any) and the first re-check (if the credential has one). */
  start(expiresAt: number | undefined): void {
    if (expiresAt !== undefined) this.expiry = this.sched.schedule(expiresAt, this);
    this.scheduleRecheck();
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.expiry?.cancel();
    this.recheckTask?.cancel();
    this.expiry = this.recheckTask = undefined;
    if (watches.get(this.principal) === this) watches.delete(this.principal);
  }

  onDeadline(task: ScheduledTask): void {
    if (this.stopped) return;
    if (task === this.expiry) this.expire('expired');
    else if (task === this.recheckTask) this.runRecheck();
  }

  private scheduleRecheck(): void {
    if (this.stopped || !this.recheck) return;
    this.recheckTask = this.sched.schedule(Date.now() + this.recheck.interval, this);
  }

  private runRecheck(): void {
    if (this.channel.closed) { this.stop(); return; }
    this.recheck!.recheck().then(
      (result) => { if (result === 'invalid') this.expire('revoked'); else this.scheduleRecheck(); },
      () => this.scheduleRecheck(),
    );
  }

  private expire(why: 'expired' | 'revoked'): void {
    if (this.stopped) return;
    this.stop();
    const { channel, admission } = this;
    if (channel.closed) return;
    this.audit?.violation(why === 'expired' ? 'credential_expired' : 'credential_revoked', {
      service: admission.service.name,
      client: admission.client.address,
      principal: this.principal.id,
      connection: admission.id,
      code: CREDENTIAL_EXPIRED_CODE,
    });
    channel.close(CREDENTIAL_EXPIRED_CODE, CREDENTIAL_EXPIRED_REASON);
  }
}
