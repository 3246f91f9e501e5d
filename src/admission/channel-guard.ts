/**
 * In-connection traffic guards, transport-neutral: installed on any admitted
 * Channel (WebSocket or fallback) so that
 *  - a client sending more than `message_rate` messages/s, `byte_rate`
 *    bytes/s or `control_rate` pings and pongs per second (with a burst of
 *    `rate_burst` × those) is slowed down: reading pauses until it is within
 *    its rates again (src/admission/inbound-rates.ts). Nothing is closed for
 *    a rate: a client flushing a queue after a reconnect is delayed, not cut;
 *  - a slow consumer — more than `send_buffer` bytes queued toward it, or bytes
 *    queued without any progress for `send_stall_timeout` — is closed 1008
 *    `slow consumer`. The size cap is checked on every send, so memory stays
 *    bounded between sweeps; the stall is found by ONE shared sweeper timer for
 *    all connections, not a timer per connection.
 *
 * One call per connection, before the service attaches: `guard.install(channel)`
 * — or register `guard.hook` and `guard.unhook` with `FrontDoor.addChannelHook`
 * (then the front door says when the channel ended). It intercepts the
 * channel's own `attach` (to count inbound traffic before the service sees
 * it), `send` / `sendFragment` (to cap the queue) and `pause` / `resume` (so
 * that the service's pauses and the guard's own combine), so the service keeps
 * holding the very same Channel object. Every violation and every slow-down is
 * audited and counted, naming the configuration key that decided it.
 */
import type { Channel, ChannelSink, CloseInfo } from '../channel.js';
import { orNoLimit, type LimitsConfig } from '../config/limits.js';
import type { ServiceConfig } from '../config/schema.js';
import type { Audit } from '../observe/audit.js';
import type { Metrics, Series } from '../observe/metrics.js';
import type { ConnectionTraffic } from '../observe/traffic.js';
import type { Admission } from './types.js';
import { InboundRates, rateLimitsOf, type RateLimits } from './inbound-rates.js';
import { monoClock as clock } from '../clock.js';

export const CLOSE_POLICY = 1008;

export interface ChannelGuardOptions {
  limits: Pick<LimitsConfig, 'message_rate' | 'byte_rate' | 'control_rate' | 'rate_burst' | 'send_buffer' | 'send_stall_timeout'>;
  audit?: Audit;
  /** Where the per-service message and byte counts go (`gatehouse_messages_total`, `gatehouse_bytes_total`). */
  metrics?: Metrics;
  /** Sweep period; defaults to a quarter of the stall timeout, at most 1 s. */
  sweepInterval?: number;
}

export class ChannelGuard {
  private readonly live = new Set<GuardState>();
  private timer: NodeJS.Timeout | undefined;
  private readonly sweepInterval: number;
  private limitsCache = new WeakMap<ServiceConfig, GuardLimits>();

  constructor(private options: ChannelGuardOptions) {
    this.sweepInterval = options.sweepInterval ?? Math.max(50, Math.min(1000, Math.floor(options.limits.send_stall_timeout / 4)));
  }

  /** Connections currently guarded. */
  get size(): number {
    return this.live.size;
  }

  /**
   * For `FrontDoor.addChannelHook`, together with `unhook` as its end hook: the
   * front door reports the end of every channel it tracks, so the guard
   * registers no `whenClosed` watcher (a closure and a list per connection).
   */
  readonly hook = (channel: Channel): void => { this.guardChannel(channel, false); };
  /** The end hook paired with `hook`: the channel has ended, stop sweeping it. */
  readonly unhook = (channel: Channel): void => {
    const state = (channel as Partial<GuardedChannel>)[kGuard];
    if (state !== undefined) this.forget(state);
  };

  /** Guard an admitted channel in place (once; later calls do nothing); call before the service attaches its sink. */
  install(channel: Channel): void {
    this.guardChannel(channel, true);
  }

  private guardChannel(channel: Channel, watchClose: boolean): void {
    const admission = channel.admission;
    if (!admission) return; // client-role (backend) links are ours, not a client's
    // A channel is guarded once (the shared replacement methods read one state).
    if ((channel as Partial<GuardedChannel>)[kGuard] !== undefined) return;
    const state = new GuardState(channel, this.limitsFor(admission.service), ownMethodsOf(channel));
    // The channel's own methods are replaced by shared functions that find the
    // state through a symbol: no bound functions or closures per connection.
    const owned = channel as GuardedChannel;
    owned[kGuard] = state;
    owned.attach = guardedAttach;
    owned.send = guardedSend;
    owned.sendFragment = guardedSendFragment;
    owned.pause = guardedPause;
    owned.resume = guardedResume;
    // A relay passing compressed frames sends toward the client with sendOwnedFragment (only where an extension was agreed).
    if (channel.sendOwnedFragment !== undefined && channel.extensions !== '') owned.sendOwnedFragment = guardedSendOwnedFragment;
    if (watchClose) channel.whenClosed(() => this.forget(state));
    this.live.add(state);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.sweepInterval);
      this.timer.unref();
    }
  }

  /** One limits object per service (and per `setLimits`), shared by its connections. */
  private limitsFor(service: ServiceConfig): GuardLimits {
    let limits = this.limitsCache.get(service);
    if (limits === undefined) {
      const l = this.options.limits;
      limits = {
        ...rateLimitsOf(service, l),
        sendBuffer: orNoLimit(l.send_buffer),
        maxLifetime: service.max_lifetime,
        lifetimeJitter: service.max_lifetime_jitter,
        guard: this,
        totals: this.totalsOf(service.name),
      };
      this.limitsCache.set(service, limits);
    }
    return limits;
  }

  /** The service's traffic series, or one unregistered set shared by all when there are no metrics. */
  private totalsOf(service: string): ServiceTotals {
    const m = this.options.metrics;
    if (m === undefined) return UNCOUNTED;
    return {
      messagesIn: m.messages.series({ service, direction: 'in' }), bytesIn: m.bytes.series({ service, direction: 'in' }),
      messagesOut: m.messages.series({ service, direction: 'out' }), bytesOut: m.bytes.series({ service, direction: 'out' }),
    };
  }

  /** A guarded channel's traffic so far (undefined when the channel is not guarded). */
  static trafficOf(channel: Channel): ConnectionTraffic | undefined {
    return (channel as Partial<GuardedChannel>)[kGuard];
  }

  /** New limits for connections guarded from now on (config reload). */
  setLimits(limits: ChannelGuardOptions['limits']): void {
    this.options.limits = limits;
    this.limitsCache = new WeakMap();
  }

  /** Stop the sweeper (gateway shutdown). Guarded channels keep their rate limits. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** @internal */
  forget(state: GuardState): void {
    state.ended();
    this.live.delete(state);
    if (this.live.size === 0) this.stop();
  }

  /** @internal */
  violation(admission: Admission, reason: string, detail: string): void {
    this.options.audit?.violation(reason, {
      service: admission.service.name,
      client: admission.client.address,
      origin: admission.origin,
      connection: admission.id,
      principal: admission.principal?.id,
      code: CLOSE_POLICY,
      detail,
    });
  }

  /** @internal Reading paused for a rate: counted, and audited (rate-limited per limit). */
  throttled(admission: Admission, limit: string, detail: string): void {
    this.options.audit?.throttle(limit, {
      service: admission.service.name,
      client: admission.client.address,
      connection: admission.id,
      principal: admission.principal?.id,
      detail,
    });
  }

  private sweep(): void {
    const now = clock();
    const stall = this.options.limits.send_stall_timeout;
    for (const s of this.live) s.sweep(now, stall);
  }
}

/** Per service, shared by its guarded connections; it also leads them back to their guard. */
interface GuardLimits extends RateLimits {
  sendBuffer: number;
  /** ms, 0: none; each connection's is shortened by up to `lifetimeJitter` of it, at random. */
  maxLifetime: number;
  lifetimeJitter: number;
  guard: ChannelGuard;
  totals: ServiceTotals;
}

/**
 * One connection's lifetime in ms: `maxLifetime` shortened by `jitter × u`
 * of it (`u` uniform in [0, 1)), so connections opened together end spread
 * over the last `jitter` of the lifetime instead of all at once.
 */
export function lifetimeOf(maxLifetime: number, jitter: number, u: number): number {
  return Math.max(1, Math.round(maxLifetime * (1 - jitter * u)));
}

/** Close code and stable reason of a connection that reached its service's max_lifetime. */
export const LIFETIME_CLOSE_CODE = 1001;
export const LIFETIME_CLOSE_REASON = 'max lifetime';

/** A service's traffic counters (series of the metrics' families), added to as messages pass. */
interface ServiceTotals { messagesIn: Series; bytesIn: Series; messagesOut: Series; bytesOut: Series }
const UNCOUNTED: ServiceTotals = { messagesIn: { value: 0 }, bytesIn: { value: 0 }, messagesOut: { value: 0 }, bytesOut: { value: 0 } };

const kGuard = Symbol('gatehouse.channelGuard');

type GuardedChannel = Channel & { [kGuard]: GuardState };

/** The channel methods the guard replaces, as they were: called with the channel as `this`. */
interface OwnMethods {
  attach: Channel['attach']; send: Channel['send']; sendFragment: Channel['sendFragment'];
  pause: Channel['pause']; resume: Channel['resume']; sendOwnedFragment: Channel['sendOwnedFragment'];
}
const REPLACED = ['attach', 'send', 'sendFragment', 'pause', 'resume'] as const;

/** One OwnMethods per channel class (prototype), shared by its connections. */
const ownMethodsByPrototype = new WeakMap<object, OwnMethods>();

/**
 * The channel's own attach/send/sendFragment. When they are its prototype's
 * (the usual case) one object per class serves every connection; a channel
 * whose methods were already replaced gets its own.
 */
function ownMethodsOf(channel: Channel): OwnMethods {
  const proto = Object.getPrototypeOf(channel) as Partial<OwnMethods> | null;
  const fromPrototype = proto !== null && REPLACED.every((m) => !Object.hasOwn(channel, m) && proto[m] === channel[m]);
  const take = (): OwnMethods => ({
    attach: channel.attach, send: channel.send, sendFragment: channel.sendFragment, pause: channel.pause, resume: channel.resume,
    sendOwnedFragment: channel.sendOwnedFragment,
  });
  if (!fromPrototype) return take();
  let own = ownMethodsByPrototype.get(proto);
  if (own === undefined) {
    own = take();
    ownMethodsByPrototype.set(proto, own);
  }
  return own;
}

function guardedAttach(this: Channel, sink: ChannelSink): void {
  (this as GuardedChannel)[kGuard].attach(sink);
}
function guardedSend(this: Channel, data: Buffer | string, isBinary: boolean): boolean {
  const state = (this as GuardedChannel)[kGuard];
  const len = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
  if (!state.mayQueue(len)) return false;
  state.countOut(len, true);
  return state.own.send.call(this, data, isBinary);
}
function guardedSendFragment(this: Channel, data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean {
  const state = (this as GuardedChannel)[kGuard];
  if (!state.mayQueue(data.length)) return false;
  state.countOut(data.length, fin);
  return state.own.sendFragment.call(this, data, isBinary, first, fin);
}
function guardedSendOwnedFragment(
  this: Channel, data: Buffer, isBinary: boolean, first: boolean, fin: boolean, mask: Buffer | null, compressed?: boolean,
): boolean {
  const state = (this as GuardedChannel)[kGuard];
  if (!state.mayQueue(data.length)) return false;
  state.countOut(data.length, fin);
  return (state.own.sendOwnedFragment as NonNullable<Channel['sendOwnedFragment']>).call(this, data, isBinary, first, fin, mask, compressed);
}
function guardedPause(this: Channel): void {
  (this as GuardedChannel)[kGuard].pauseFor(BY_SERVICE);
}
function guardedResume(this: Channel): void {
  (this as GuardedChannel)[kGuard].resumeFor(BY_SERVICE);
}

/** Who wants reading paused: the service (relay backpressure), the guard's rates, or both. */
const BY_SERVICE = 1;
const BY_RATE = 2;

/**
 * Per-connection accounting. It is also the sink the transport delivers to
 * (counting, then handing on to the service's sink), so guarding a connection
 * costs this one object; the token buckets are made on the first message
 * (a bucket starts full, so making it later changes nothing). Its traffic
 * counts are plain integers added to as messages pass (and to the service's
 * totals); the admin API, the access log and the metrics read them.
 */
class GuardState implements ChannelSink, ConnectionTraffic {
  messagesIn = 0;
  bytesIn = 0;
  messagesOut = 0;
  bytesOut = 0;
  /** On `monoClock`. */
  readonly openedAt: number;
  private sink: ChannelSink | null = null;
  streaming: boolean | undefined = undefined;
  private rates: InboundRates | null = null;
  /** BY_SERVICE | BY_RATE: reading stays paused while either wants it. */
  private pausedBy = 0;
  /** Ends a rate pause; only while one lasts. */
  private rateTimer: NodeJS.Timeout | null = null;
  private violated = false;
  /** Sweeper state: the channel's deliveredBytes at the last sweep, and when it last moved. */
  private lastDelivered = 0;
  /** On `monoClock`, like every time here: a small integer, not a boxed number per connection. */
  private lastProgress: number;
  private closingSince = 0;
  /** When max_lifetime ends this connection (on `monoClock`), 0 when it does not. */
  private readonly lifetimeEnds: number;

  /**
   * The admission is not kept: it is the channel's. `own` holds the channel's
   * replaced methods, usually one object shared by every connection.
   */
  constructor(
    private readonly channel: Channel,
    private readonly limits: GuardLimits,
    readonly own: OwnMethods,
  ) {
    this.lastProgress = clock();
    this.openedAt = this.lastProgress;
    // Jitter spreads the ends of connections opened together, so they do not all reconnect at once.
    this.lifetimeEnds = limits.maxLifetime > 0 ? this.openedAt + lifetimeOf(limits.maxLifetime, limits.lifetimeJitter, Math.random()) : 0;
  }

  /** The service attaches its sink: the transport gets this state as its sink instead. */
  attach(sink: ChannelSink): void {
    this.sink = sink;
    this.streaming = sink.streaming;
    this.own.attach.call(this.channel, this);
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    this.countIn(data.length, true);
    const sink = this.sink;
    if (sink?.onMessage === undefined || this.violated) return;
    sink.onMessage(data, isBinary);
    this.charge(this.ratesNow().data(true, data.length, clock()));
  }

  onFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, totalLength?: number): void {
    this.countIn(data.length, first);
    const sink = this.sink;
    if (sink?.onFragment === undefined || this.violated) return;
    sink.onFragment(data, isBinary, first, fin, totalLength);
    this.charge(this.ratesNow().data(first, data.length, clock()));
  }

  onControl(bytes: number): void {
    if (!this.violated) this.charge(this.ratesNow().controlFrame(bytes, clock()));
  }

  onDrain(): void {
    this.sink?.onDrain?.();
  }

  onClose(info: CloseInfo): void {
    this.sink?.onClose?.(info);
  }

  private countIn(bytes: number, message: boolean): void {
    const totals = this.limits.totals;
    this.bytesIn += bytes;
    totals.bytesIn.value += bytes;
    if (message) {
      this.messagesIn++;
      totals.messagesIn.value++;
    }
  }

  /** `bytes` were queued toward the client; `message`: a message ended with them. */
  countOut(bytes: number, message: boolean): void {
    const totals = this.limits.totals;
    this.bytesOut += bytes;
    totals.bytesOut.value += bytes;
    if (message) {
      this.messagesOut++;
      totals.messagesOut.value++;
    }
  }

  /**
   * May `len` more bytes be queued toward the client? Not when bytes are
   * already waiting and this would take the queue past the cap: the client is a
   * slow consumer. (One message larger than the cap on an empty queue is the
   * service's max_message business, not a sign of a slow reader.)
   */
  mayQueue(len: number): boolean {
    if (this.violated) return false;
    const queued = this.channel.bufferedAmount;
    if (queued === 0 || queued + len <= this.limits.sendBuffer) return true;
    this.violate('slow_consumer', 'slow consumer', `more than ${this.limits.sendBuffer} bytes queued (limits.send_buffer)`);
    return false;
  }

  /** The rate buckets, made on first need (a bucket starts full, so making it later changes nothing). */
  private ratesNow(): InboundRates {
    return (this.rates ??= new InboundRates(this.limits, clock()));
  }

  /**
   * What arrived has been charged (and delivered: a piece is never held back
   * here); when a bucket is empty, reading pauses for `waitMs` so that the
   * next piece waits for its token. Called from inside the transport's
   * delivery, which stops at once (the rest of the read is kept, not copied).
   */
  private charge(waitMs: number): void {
    if (waitMs === 0 || this.rateTimer !== null || this.channel.closed) return;
    const rates = this.rates as InboundRates;
    this.limits.guard.throttled(this.channel.admission as Admission, rates.over, `reading paused ${waitMs} ms: ${rates.describe()}`);
    this.pauseFor(BY_RATE);
    this.rateTimer = setTimeout(() => {
      this.rateTimer = null;
      this.resumeFor(BY_RATE);
    }, waitMs);
    this.rateTimer.unref();
  }

  /** @internal Reading pauses while the service or the guard wants it paused. */
  pauseFor(who: number): void {
    const was = this.pausedBy;
    this.pausedBy |= who;
    if (was === 0) this.own.pause.call(this.channel);
  }

  /** @internal */
  resumeFor(who: number): void {
    if ((this.pausedBy & who) === 0) return;
    this.pausedBy &= ~who;
    if (this.pausedBy === 0 && !this.violated) this.own.resume.call(this.channel);
  }

  /** @internal The channel has ended: no rate pause to end any more. */
  ended(): void {
    if (this.rateTimer !== null) clearTimeout(this.rateTimer);
    this.rateTimer = null;
  }

  private violate(reason: string, closeReason: string, detail: string): void {
    if (this.violated) return;
    this.violated = true;
    this.closingSince = clock();
    this.limits.guard.violation(this.channel.admission as Admission, reason, detail);
    // Stop reading at once: whatever else the client sends is not our problem any more.
    this.own.pause.call(this.channel);
    this.channel.close(CLOSE_POLICY, closeReason);
  }

  /** Called by the shared sweeper. */
  sweep(now: number, stallTimeout: number): void {
    if (this.violated) {
      // The Close frame may be stuck behind the very bytes the client does not read:
      // drop the connection if it has not ended within another stall period.
      if (now - this.closingSince >= stallTimeout) this.channel.terminate();
      return;
    }
    // Closing normally: the transport's close timeout ends it; `whenClosed` forgets it.
    if (this.channel.closed) return;
    if (this.lifetimeEnds !== 0 && now >= this.lifetimeEnds) {
      this.channel.close(LIFETIME_CLOSE_CODE, LIFETIME_CLOSE_REASON);
      return;
    }
    // Progress is bytes leaving the queue. Comparing queue sizes is not: a reader
    // that keeps up with a steady sender (or a fallback client acknowledging each
    // message a moment after it arrives) shows the same size at every sweep.
    const buffered = this.channel.bufferedAmount;
    const delivered = this.channel.deliveredBytes;
    if (buffered === 0 || delivered !== this.lastDelivered) {
      this.lastProgress = now;
    } else if (now - this.lastProgress >= stallTimeout) {
      this.violate('slow_consumer', 'slow consumer', `queued bytes made no progress for ${stallTimeout} ms (limits.send_stall_timeout)`);
      return;
    }
    this.lastDelivered = delivered;
    if (buffered > this.limits.sendBuffer) this.violate('slow_consumer', 'slow consumer', `more than ${this.limits.sendBuffer} bytes queued (limits.send_buffer)`);
  }
}
