/**
 * In-connection traffic guards, transport-neutral: wraps any admitted Channel
 * (WebSocket or fallback) so that
 *  - a client sending more than `message_rate` messages/s or `byte_rate`
 *    bytes/s (with a burst of `rate_burst` × those) is closed 1008 `rate limit`;
 *  - a slow consumer — more than `send_buffer` bytes queued toward it, or bytes
 *    queued without any progress for `send_stall_timeout` — is closed 1008
 *    `slow consumer`. The size cap is enforced on every send (memory stays
 *    bounded between sweeps); the stall is found by ONE shared sweeper timer
 *    for all connections, not a timer per connection.
 *
 * The front door makes one ChannelGuard and calls `guard.wrap(channel)` once
 * per admitted connection, handing the result to the service session instead
 * of the raw channel. Every violation is audited and counted; the guard also
 * releases the admission (connection slots) when the channel closes.
 */
import type { Channel, ChannelSink, CloseInfo } from '../channel.js';
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
  private readonly live = new Set<GuardedChannel>();
  private timer: NodeJS.Timeout | undefined;
  private readonly sweepInterval: number;

  constructor(private readonly options: ChannelGuardOptions) {
    this.sweepInterval = options.sweepInterval ?? Math.max(50, Math.min(1000, Math.floor(options.limits.send_stall_timeout / 4)));
  }

  /** Connections currently guarded. */
  get size(): number {
    return this.live.size;
  }

  /** Wrap an admitted channel; use the returned Channel in its place. */
  wrap(channel: Channel): Channel {
    const service = channel.admission.service;
    const l = this.options.limits;
    const g = new GuardedChannel(channel, this, {
      messageRate: service.message_rate ?? l.message_rate,
      byteRate: service.byte_rate ?? l.byte_rate,
      burst: l.rate_burst,
      sendBuffer: l.send_buffer,
    });
    this.live.add(g);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.sweepInterval);
      this.timer.unref();
    }
    return g;
  }

  /** Stop the sweeper (gateway shutdown). Guarded channels keep their rate limits. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** @internal */
  forget(g: GuardedChannel): void {
    this.live.delete(g);
    if (this.live.size === 0) this.stop();
  }

  /** @internal */
  violation(admission: Admission, reason: string, detail: string): void {
    this.options.audit?.violation(reason, {
      service: admission.service.name,
      client: admission.client.address,
      origin: admission.origin,
      connection: admission.id,
      code: CLOSE_POLICY,
      detail,
    });
  }

  private sweep(): void {
    const now = Date.now();
    const stall = this.options.limits.send_stall_timeout;
    for (const g of this.live) g.sweep(now, stall);
  }
}

interface GuardLimits { messageRate: number; byteRate: number; burst: number; sendBuffer: number }

class GuardedChannel implements Channel {
  private readonly messages: TokenBucket;
  private readonly bytes: TokenBucket;
  private violated = false;
  /** Sweeper state: last bufferedAmount seen and when the queue last moved. */
  private lastBuffered = 0;
  private lastProgress: number;
  private closingSince = 0;
  private drained = false;

  constructor(private readonly inner: Channel, private readonly guard: ChannelGuard, private readonly limits: GuardLimits) {
    const now = Date.now();
    this.messages = new TokenBucket(limits.messageRate, limits.messageRate * limits.burst, now);
    this.bytes = new TokenBucket(limits.byteRate, limits.byteRate * limits.burst, now);
    this.lastProgress = now;
  }

  get transport(): Channel['transport'] { return this.inner.transport; }
  get protocol(): string { return this.inner.protocol; }
  get extensions(): string { return this.inner.extensions; }
  get admission(): Admission { return this.inner.admission; }
  get bufferedAmount(): number { return this.inner.bufferedAmount; }
  get closed(): boolean { return this.inner.closed; }

  attach(sink: ChannelSink): void {
    const wrapped: ChannelSink = {
      streaming: sink.streaming,
      onMessage: sink.onMessage && ((data, isBinary) => {
        if (this.admit(1, data.length)) sink.onMessage!(data, isBinary);
      }),
      onFragment: sink.onFragment && ((data, isBinary, first, fin, totalLength) => {
        if (this.admit(first ? 1 : 0, data.length)) sink.onFragment!(data, isBinary, first, fin, totalLength);
      }),
      onDrain: () => {
        this.drained = true;
        sink.onDrain?.();
      },
      onClose: (info: CloseInfo) => {
        this.ended();
        sink.onClose?.(info);
      },
    };
    this.inner.attach(wrapped);
  }

  send(data: Buffer | string, isBinary: boolean): boolean {
    if (this.violated) return false;
    const len = typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    if (this.overflows(len)) return false;
    return this.inner.send(data, isBinary);
  }

  sendFragment(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): boolean {
    if (this.violated) return false;
    if (this.overflows(data.length)) return false;
    return this.inner.sendFragment(data, isBinary, first, fin);
  }

  pause(): void { this.inner.pause(); }
  resume(): void { this.inner.resume(); }
  close(code?: number, reason?: string): void { this.inner.close(code, reason); }
  terminate(): void { this.inner.terminate(); }

  /** Inbound accounting; false (and the connection closing) when over a rate. */
  private admit(messages: number, bytes: number): boolean {
    if (this.violated) return false;
    const now = Date.now();
    if ((messages === 0 || this.messages.take(messages, now)) && this.bytes.takeWithDebt(bytes, now)) return true;
    this.violate('rate_limit', 'rate limit', `over ${this.limits.messageRate} messages/s or ${this.limits.byteRate} bytes/s`);
    return false;
  }

  /** Would queuing `len` more bytes pass the cap? Then the client is a slow consumer. */
  private overflows(len: number): boolean {
    if (this.inner.bufferedAmount + len <= this.limits.sendBuffer) return false;
    this.violate('slow_consumer', 'slow consumer', `more than ${this.limits.sendBuffer} bytes queued`);
    return true;
  }

  private violate(reason: string, closeReason: string, detail: string): void {
    if (this.violated) return;
    this.violated = true;
    this.closingSince = Date.now();
    this.guard.violation(this.inner.admission, reason, detail);
    // Stop reading at once: whatever else the client sends is not our problem any more.
    this.inner.pause();
    this.inner.close(CLOSE_POLICY, closeReason);
  }

  private ended(): void {
    this.guard.forget(this);
    this.inner.admission.release();
  }

  /** @internal Called by the shared sweeper. */
  sweep(now: number, stallTimeout: number): void {
    if (this.inner.closed) {
      this.ended();
      return;
    }
    if (this.violated) {
      // The Close frame may be stuck behind the very bytes the client does not read.
      if (now - this.closingSince >= stallTimeout) this.inner.terminate();
      return;
    }
    const buffered = this.inner.bufferedAmount;
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
