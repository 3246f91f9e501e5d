/**
 * Token buckets: `rate` tokens per second, holding at most `capacity`.
 * `KeyedBuckets` keeps one bucket per key (a client address) in a Map whose
 * full, idle buckets are swept away, so memory follows the number of clients
 * active in the last few seconds, not the number ever seen.
 */

export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(private readonly rate: number, private readonly capacity: number, now: number) {
    this.tokens = capacity;
    this.last = now;
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.rate) / 1000);
      this.last = now;
    }
  }

  /** Take `n` tokens if there are that many. */
  take(n: number, now: number): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /**
   * Take `n` tokens unconditionally; the bucket may go below zero (debt), so
   * that one item larger than the capacity (a big message) passes and is then
   * paid back before the next one may start (see `inDebt`).
   */
  charge(n: number, now: number): void {
    this.refill(now);
    this.tokens -= n;
  }

  /** True while earlier charges have not been paid back. */
  inDebt(now: number): boolean {
    this.refill(now);
    return this.tokens <= 0;
  }

  /** Milliseconds until `n` tokens are available. */
  waitFor(n: number, now: number): number {
    this.refill(now);
    return this.tokens >= n ? 0 : ((n - this.tokens) * 1000) / this.rate;
  }

  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }
}

export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private lastSweep = 0;

  constructor(
    private readonly rate: number,
    private readonly capacity: number,
    /** Sweep at most this often (ms), and at once when the map grows past `maxKeys`. */
    private readonly sweepEvery = 10_000,
    private readonly maxKeys = 100_000,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /** Take one token for `key`; returns 0 when allowed, else the milliseconds to wait. */
  take(key: string, now: number): number {
    if (now - this.lastSweep >= this.sweepEvery || this.buckets.size >= this.maxKeys) this.sweep(now);
    let b = this.buckets.get(key);
    if (!b) {
      b = new TokenBucket(this.rate, this.capacity, now);
      this.buckets.set(key, b);
    }
    if (b.take(1, now)) return 0;
    return Math.max(1, b.waitFor(1, now));
  }

  /** Forget buckets that have refilled completely: they behave exactly like new ones. */
  sweep(now: number): void {
    this.lastSweep = now;
    for (const [k, b] of this.buckets) if (b.isFull(now)) this.buckets.delete(k);
  }
}
