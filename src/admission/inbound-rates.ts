/**
 * What a client may send on one connection: messages, bytes and control
 * frames per second, each a token bucket holding `burst` seconds' worth.
 * Everything the client sends is charged as it arrives — a message when it
 * starts, bytes as they come, a ping or pong as one control frame plus its
 * bytes — and the answer is how long to stop reading before the next one may
 * come: nothing is refused, the client is slowed down (like nginx
 * `limit_req` with a delay), and TCP holds the rest in its own buffers.
 * A rate of 0 is no limit: that bucket is not kept.
 */
import type { LimitsConfig } from '../config/limits.js';
import type { ServiceConfig } from '../config/schema.js';
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

/** A service's rates: its own overrides, else the gateway's `limits`; each names the key that sets it. */
export function rateLimitsOf(service: ServiceConfig, l: Pick<LimitsConfig, 'message_rate' | 'byte_rate' | 'control_rate' | 'rate_burst'>): RateLimits {
  const own = `services.${service.name}`;
  return {
    messageRate: service.message_rate ?? l.message_rate,
    // A service that admits messages of max_message bytes admits at least one of them per second (0: no limit).
    byteRate: service.byte_rate ?? (l.byte_rate === 0 ? 0 : Math.max(l.byte_rate, service.max_message)),
    controlRate: l.control_rate,
    burst: l.rate_burst,
    keys: {
      message_rate: service.message_rate !== undefined ? `${own}.message_rate` : 'limits.message_rate',
      byte_rate: service.byte_rate !== undefined ? `${own}.byte_rate`
        : l.byte_rate >= service.max_message ? 'limits.byte_rate' : `${own}.byte_rate (default: its max_message)`,
      control_rate: 'limits.control_rate',
    },
  };
}

export class InboundRates {
  private readonly messages: TokenBucket | null;
  private readonly bytes: TokenBucket | null;
  /** Made on the first control frame: most connections never send one. */
  private control: TokenBucket | null = null;
  /** The limit that made the last non-zero wait. */
  over: RateLimitName = 'message_rate';

  constructor(private readonly limits: RateLimits, now: number) {
    this.messages = bucket(limits.messageRate, limits.burst, now);
    this.bytes = bucket(limits.byteRate, limits.burst, now);
  }

  /** A piece of a message arrived (`first`: the message starts). Returns the ms to stop reading for, 0 to go on. */
  data(first: boolean, bytes: number, now: number): number {
    if (first) this.messages?.charge(1, now);
    this.bytes?.charge(bytes, now);
    return this.wait(now);
  }

  /** A control frame of `bytes` on the wire arrived. Returns the ms to stop reading for, 0 to go on. */
  controlFrame(bytes: number, now: number): number {
    const l = this.limits;
    if (l.controlRate !== 0) (this.control ??= new TokenBucket(l.controlRate, l.controlRate * l.burst, now)).charge(1, now);
    this.bytes?.charge(bytes, now);
    return this.wait(now);
  }

  /** How long until every bucket holds a token again (the next message, byte and control frame may come). */
  private wait(now: number): number {
    let wait = this.messages?.waitFor(1, now) ?? 0;
    if (wait > 0) this.over = 'message_rate';
    const bytes = this.bytes?.waitFor(1, now) ?? 0;
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

/** A bucket of `burst` seconds' worth of `rate`; none for a rate of 0 (no limit). */
function bucket(rate: number, burst: number, now: number): TokenBucket | null {
  return rate === 0 ? null : new TokenBucket(rate, rate * burst, now);
}
