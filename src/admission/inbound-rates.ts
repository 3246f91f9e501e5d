/**
 * What a client may send on one connection: messages, bytes and control
 * frames per second, each a token bucket holding `burst` seconds' worth.
 * Everything the client sends is charged as it arrives — a message when it
 * starts, bytes as they come, a ping or pong as one control frame plus its
 * bytes — and the answer is how long to stop reading before the next one may
 * come: nothing is refused, the client is slowed down (like nginx
 * `limit_req` with a delay), and TCP holds the rest in its own buffers.
 */
import { TokenBucket } from '../shared-state/token-bucket.js';

export type RateLimitName = 'message_rate' | 'byte_rate' | 'control_rate';

export interface RateLimits {
  messageRate: number;
  byteRate: number;
  controlRate: number;
  /** Bucket size as a multiple of the rate. */
  burst: number;
  /** The configuration key of each limit, as a refusal names it (`limits.message_rate`, `services.chat.byte_rate`). */
  keys: Record<RateLimitName, string>;
}

export class InboundRates {
  private readonly messages: TokenBucket;
  private readonly bytes: TokenBucket;
  /** Made on the first control frame: most connections never send one. */
  private control: TokenBucket | null = null;
  /** The limit that made the last non-zero wait. */
  over: RateLimitName = 'message_rate';

  constructor(private readonly limits: RateLimits, now: number) {
    this.messages = new TokenBucket(limits.messageRate, limits.messageRate * limits.burst, now);
    this.bytes = new TokenBucket(limits.byteRate, limits.byteRate * limits.burst, now);
  }

  /** A piece of a message arrived (`first`: the message starts). Returns the ms to stop reading for, 0 to go on. */
  data(first: boolean, bytes: number, now: number): number {
    if (first) this.messages.charge(1, now);
    this.bytes.charge(bytes, now);
    return this.wait(now);
  }

  /** A control frame of `bytes` on the wire arrived. Returns the ms to stop reading for, 0 to go on. */
  controlFrame(bytes: number, now: number): number {
    const l = this.limits;
    const control = (this.control ??= new TokenBucket(l.controlRate, l.controlRate * l.burst, now));
    control.charge(1, now);
    this.bytes.charge(bytes, now);
    return this.wait(now);
  }

  /** How long until every bucket holds a token again (the next message, byte and control frame may come). */
  private wait(now: number): number {
    let wait = this.messages.waitFor(1, now);
    if (wait > 0) this.over = 'message_rate';
    const bytes = this.bytes.waitFor(1, now);
    if (bytes > wait) { wait = bytes; this.over = 'byte_rate'; }
    const control = this.control?.waitFor(1, now) ?? 0;
    if (control > wait) { wait = control; this.over = 'control_rate'; }
    return Math.ceil(wait);
  }

  /** The refusal's words: which key to change, and its value. */
  describe(): string {
    const l = this.limits;
    const rate = this.over === 'message_rate' ? `${l.messageRate} messages/s`
      : this.over === 'byte_rate' ? `${l.byteRate} bytes/s` : `${l.controlRate} control frames/s`;
    return `over ${l.keys[this.over]} (${rate}, burst × limits.rate_burst ${l.burst})`;
  }
}
