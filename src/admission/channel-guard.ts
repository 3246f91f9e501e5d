/**
 * In-connection traffic guards, transport-neutral: installed on any admitted
 * Channel (WebSocket or fallback) so that
 *  - a client sending more than `message_rate` messages/s or `byte_rate`
 *    bytes/s (with a burst of `rate_burst` × those) is closed 1008 `rate limit`;
 *  - a slow consumer — more than `send_buffer` bytes queued toward it, or bytes
 *    queued without any progress for `send_stall_timeout` — is closed 1008
 *    `slow consumer`. The size cap is checked on every send, so memory stays
 *    bounded between sweeps; the stall is found by ONE shared sweeper timer for
 *    all connections, not a timer per connection.
 *
 * One call per connection, before the service attaches: `guard.install(channel)`
 * — or register `guard.hook` and `guard.unhook` with `FrontDoor.addChannelHook`
 * (then the front door says when the channel ended). It intercepts the
 * channel's own `attach` (to count inbound traffic before the service sees it)
 * and `send` / `sendFragment` (to cap the queue), so the service keeps holding
 * the very same Channel object. Every violation is audited and counted.
 */
import type { Channel, ChannelSink, CloseInfo } from '../channel.js';
import type { LimitsConfig } from '../config/limits.js';
import type { ServiceConfig } from '../config/schema.js';
import type { Audit } from '../observe/audit.js';
import type { Admission } from './types.js';
import { TokenBucket } from './token-bucket.js';
import { monoClock as clock } from '../clock.js';

export const CLOSE_POLICY = 1008;

export interface ChannelGuardOptions {
  limits: Pick<LimitsConfig, 'message_rate' | 'byte_rate' | 'rate_burst' | 'send_buffer' | 'send_stall_timeout'>;
  audit?: Audit;
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
        messageRate: service.message_rate ?? l.message_rate,
        // A service that admits messages of max_message bytes admits at least one of them per second.
        byteRate: service.byte_rate ?? Math.max(l.byte_rate, service.max_message),
        burst: l.rate_burst,
        sendBuffer: l.send_buffer,
        guard: this,
      };
      this.limitsCache.set(service, limits);
    }
    return limits;
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

  private sweep(): void {
    const now = clock();
    const stall = this.options.limits.send_stall_timeout;
    for (const s of this.live) s.sweep(now, stall);
  }
}

/** Per service, shared by its guarded connections; it also leads them back to their guard. */
interface GuardLimits { messageRate: number; byteRate: number; burst: number; sendBuffer: number; guard: ChannelGuard }

const kGuard = Symbol('gatehouse.channelGuard');

type GuardedChannel = Channel & { [kGuard]: GuardState };

/** The channel methods the guard replaces, as they were: called with the channel as `this`. */
interface OwnMethods { attach: Channel['attach']; send: Channel['send']; sendFragment: Channel['sendFragment'] }

/** One OwnMethods per channel class (prototype), shared by its connections. */
const ownMethodsByPrototype = new WeakMap<object, OwnMethods>();

/**
 * The channel's own attach/send/sendFragment. When they are its prototype's
 * (the usual case) one object per class serves every connection; a channel
 * whose methods were already replaced gets its own.
 */
function ownMethodsOf(channel: Channel): OwnMethods {
  const proto = Object.getPrototypeOf(channel) as Partial<OwnMethods> | null;
  const fromPrototype = proto !== null && !Object.hasOwn(channel, 'attach') && !Object.hasOwn(channel, 'send') &&
    !Object.hasOwn(channel, 'sendFragment') && proto.attach === channel.attach && proto.send === channel.send &&
    proto.sendFragment === channel.sendFragment;
  if (!fromPrototype) return { attach: channel.attach, send: channel.send, sendFragment: channel.sendFragment };
  let own = ownMethodsByPrototype.get(proto);
  if (own === undefined) {
    own = { attach: channel.attach, send: channel.send, sendFragment: channel.sendFragment };
    ownMethodsByPrototype.set(proto, own);
  }
  return own;
}

function guardedAttach(this: Channel, sink: ChannelSink): void {
  (this as GuardedChannel)[kGuard].attach(sink);
}
function guardedSend(this: Channel, data: Buffer | string, isBinary: boolean): boolean {
  const state = (this as GuardedChannel)[kGuard];
  return state.mayQueue(typeof data === 'string' ? Buffer.byteLength(data) : data.length) && state.own.send.call(this, data, isBinary);
}
function guardedSendFragment(this: Channel, data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean {
  const state = (this as GuardedChannel)[kGuard];
  return state.mayQueue(data.length) && state.own.sendFragment.call(this, data, isBinary, first, fin);
}

/**
 * Per-connection accounting. It is also the sink the transport delivers to
 * (counting, then handing on to the service's sink), so guarding a connection
 * costs this one object; the token buckets are made on the first message
 * (a bucket starts full, so making it later changes nothing).
 */
class GuardState implements ChannelSink {
  private sink: ChannelSink | null = null;
  streaming: boolean | undefined = undefined;
  private messages: TokenBucket | null = null;
  private bytes: TokenBucket | null = null;
  private violated = false;
  /** Sweeper state: the channel's deliveredBytes at the last sweep, and when it last moved. */
  private lastDelivered = 0;
  /** On `monoClock`, like every time here: a small integer, not a boxed number per connection. */
  private lastProgress: number;
  private closingSince = 0;

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
  }

  /** The service attaches its sink: the transport gets this state as its sink instead. */
  attach(sink: ChannelSink): void {
    this.sink = sink;
    this.streaming = sink.streaming;
    this.own.attach.call(this.channel, this);
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    const sink = this.sink;
    if (sink?.onMessage === undefined) return;
    if (this.admit(true, data.length)) sink.onMessage(data, isBinary);
  }

  onFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, totalLength?: number): void {
    const sink = this.sink;
    if (sink?.onFragment === undefined) return;
    if (this.admit(first, data.length)) sink.onFragment(data, isBinary, first, fin, totalLength);
  }

  onDrain(): void {
    this.sink?.onDrain?.();
  }

  onClose(info: CloseInfo): void {
    this.sink?.onClose?.(info);
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
    this.violate('slow_consumer', 'slow consumer', `more than ${this.limits.sendBuffer} bytes queued`);
    return false;
  }

  /**
   * Inbound accounting; false (and the connection closing) when over a rate.
   * Decided when a message starts — a message is never cut in the middle — and
   * its bytes are charged as they arrive, so a big message passes and the next
   * one waits until the byte budget has been paid back.
   */
  private admit(first: boolean, bytes: number): boolean {
    if (this.violated) return false;
    const now = clock(); // the buckets only compare times they were given
    const l = this.limits;
    const messages = this.messages ??= new TokenBucket(l.messageRate, l.messageRate * l.burst, now);
    const bytesBucket = this.bytes ??= new TokenBucket(l.byteRate, l.byteRate * l.burst, now);
    if (first && (!messages.take(1, now) || bytesBucket.inDebt(now))) {
      this.violate('rate_limit', 'rate limit', `over ${this.limits.messageRate} messages/s or ${this.limits.byteRate} bytes/s`);
      return false;
    }
    bytesBucket.charge(bytes, now);
    return true;
  }

  private violate(reason: string, closeReason: string, detail: string): void {
    if (this.violated) return;
    this.violated = true;
    this.closingSince = clock();
    this.limits.guard.violation(this.channel.admission as Admission, reason, detail);
    // Stop reading at once: whatever else the client sends is not our problem any more.
    this.channel.pause();
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
    // Progress is bytes leaving the queue. Comparing queue sizes is not: a reader
    // that keeps up with a steady sender (or a fallback client acknowledging each
    // message a moment after it arrives) shows the same size at every sweep.
    const buffered = this.channel.bufferedAmount;
    const delivered = this.channel.deliveredBytes;
    if (buffered === 0 || delivered !== this.lastDelivered) {
      this.lastProgress = now;
    } else if (now - this.lastProgress >= stallTimeout) {
      this.violate('slow_consumer', 'slow consumer', `queued bytes made no progress for ${stallTimeout} ms`);
      return;
    }
    this.lastDelivered = delivered;
    if (buffered > this.limits.sendBuffer) this.violate('slow_consumer', 'slow consumer', `more than ${this.limits.sendBuffer} bytes queued`);
  }
}
