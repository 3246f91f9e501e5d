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
 * — or register `guard.hook` with `FrontDoor.addChannelHook`. It intercepts the
 * channel's own `attach` (to count inbound traffic before the service sees it)
 * and `send` / `sendFragment` (to cap the queue), so the service keeps holding
 * the very same Channel object. Every violation is audited and counted.
 */
import type { Channel, ChannelSink } from '../channel.js';
import type { LimitsConfig } from '../config/limits.js';
import type { Audit } from '../observe/audit.js';
import type { Admission } from './types.js';
import { TokenBucket } from './token-bucket.js';

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

  constructor(private options: ChannelGuardOptions) {
    this.sweepInterval = options.sweepInterval ?? Math.max(50, Math.min(1000, Math.floor(options.limits.send_stall_timeout / 4)));
  }

  /** Connections currently guarded. */
  get size(): number {
    return this.live.size;
  }

  /** For `FrontDoor.addChannelHook`. */
  readonly hook = (channel: Channel): void => this.install(channel);

  /** Guard an admitted channel in place; call before the service attaches its sink. */
  install(channel: Channel): void {
    const admission = channel.admission;
    if (!admission) return; // client-role (backend) links are ours, not a client's
    const service = admission.service;
    const l = this.options.limits;
    const state = new GuardState(channel, admission, this, {
      messageRate: service.message_rate ?? l.message_rate,
      // A service that admits messages of max_message bytes admits at least one of them per second.
      byteRate: service.byte_rate ?? Math.max(l.byte_rate, service.max_message),
      burst: l.rate_burst,
      sendBuffer: l.send_buffer,
    });
    const attach = channel.attach.bind(channel);
    const send = channel.send.bind(channel);
    const sendFragment = channel.sendFragment.bind(channel);
    channel.attach = (sink: ChannelSink) => attach(state.inbound(sink));
    channel.send = (data: Buffer | string, isBinary: boolean) =>
      state.mayQueue(typeof data === 'string' ? Buffer.byteLength(data) : data.length) && send(data, isBinary);
    channel.sendFragment = (data: Buffer, isBinary: boolean, first: boolean, fin: boolean) =>
      state.mayQueue(data.length) && sendFragment(data, isBinary, first, fin);
    channel.whenClosed(() => this.forget(state));
    this.live.add(state);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.sweepInterval);
      this.timer.unref();
    }
  }

  /** New limits for connections guarded from now on (config reload). */
  setLimits(limits: ChannelGuardOptions['limits']): void {
    this.options.limits = limits;
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
    const now = Date.now();
    const stall = this.options.limits.send_stall_timeout;
    for (const s of this.live) s.sweep(now, stall);
  }
}

interface GuardLimits { messageRate: number; byteRate: number; burst: number; sendBuffer: number }

/** Per-connection accounting. */
class GuardState {
  private readonly messages: TokenBucket;
  private readonly bytes: TokenBucket;
  private violated = false;
  /** Sweeper state: last bufferedAmount seen and when the queue last moved. */
  private lastBuffered = 0;
  private lastProgress: number;
  private closingSince = 0;
  private drained = false;

  constructor(
    private readonly channel: Channel,
    private readonly admission: Admission,
    private readonly guard: ChannelGuard,
    private readonly limits: GuardLimits,
  ) {
    const now = Date.now();
    this.messages = new TokenBucket(limits.messageRate, limits.messageRate * limits.burst, now);
    this.bytes = new TokenBucket(limits.byteRate, limits.byteRate * limits.burst, now);
    this.lastProgress = now;
  }

  /** The sink the transport delivers to: counts, then hands on to the service's sink. */
  inbound(sink: ChannelSink): ChannelSink {
    return {
      streaming: sink.streaming,
      onMessage: sink.onMessage && ((data, isBinary) => {
        if (this.admit(true, data.length)) sink.onMessage!(data, isBinary);
      }),
      onFragment: sink.onFragment && ((data, isBinary, first, fin, totalLength) => {
        if (this.admit(first, data.length)) sink.onFragment!(data, isBinary, first, fin, totalLength);
      }),
      onDrain: () => {
        this.drained = true;
        sink.onDrain?.();
      },
      onClose: sink.onClose && ((info) => sink.onClose!(info)),
    };
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
    const now = Date.now();
    if (first && (!this.messages.take(1, now) || this.bytes.inDebt(now))) {
      this.violate('rate_limit', 'rate limit', `over ${this.limits.messageRate} messages/s or ${this.limits.byteRate} bytes/s`);
      return false;
    }
    this.bytes.charge(bytes, now);
    return true;
  }

  private violate(reason: string, closeReason: string, detail: string): void {
    if (this.violated) return;
    this.violated = true;
    this.closingSince = Date.now();
    this.guard.violation(this.admission, reason, detail);
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
    const buffered = this.channel.bufferedAmount;
    if (buffered === 0 || buffered < this.lastBuffered || this.drained) {
      this.lastProgress = now;
    } else if (now - this.lastProgress >= stallTimeout) {
      this.violate('slow_consumer', 'slow consumer', `queued bytes made no progress for ${stallTimeout} ms`);
      return;
    }
    this.drained = false;
    this.lastBuffered = buffered;
    if (buffered > this.limits.sendBuffer) this.violate('slow_consumer', 'slow consumer', `more than ${this.limits.sendBuffer} bytes queued`);
  }
}
