/**
 * Counts failed authentications per key (client address, user name) in fixed
 * windows. Once a key reaches its limit it is refused with 429 until its window
 * ends — whatever credentials it brings, so guessing cannot continue.
 *
 * An attempt is reserved before its credentials are checked (a password hash
 * takes tens of milliseconds and 32 MiB) and settled when the verdict is known:
 * attempts under way count as failures to be, so of any number of parallel
 * attempts at most the remaining budget is checked, never more.
 *
 * Memory is bounded: at most `maxKeys` keys are tracked; the oldest windows are
 * dropped first (an attacker rotating addresses only ever evicts stale entries).
 */

/** How long a key blocked only by its own attempts under way is asked to wait: they end within seconds. */
const IN_FLIGHT_RETRY_MS = 1000;

interface Window {
  /** When the first failure of this window happened; 0 while there is none. */
  start: number;
  count: number;
  /** Attempts reserved and not yet settled. */
  pending: number;
}

export class FailureLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Reserves one attempt for `key`: 0 when reserved (the caller must `settle`
   * it exactly once), else the milliseconds until `key` may try again.
   */
  reserve(key: string): number {
    const w = this.current(key);
    if (w && w.count + w.pending >= this.limit) {
      return w.count >= this.limit ? this.windowMs - (this.now() - w.start) : IN_FLIGHT_RETRY_MS;
    }
    (w ?? this.add(key)).pending++;
    return 0;
  }

  /** Ends a reserved attempt; `failed` counts it against the key. */
  settle(key: string, failed: boolean): void {
    const w = this.current(key) ?? (failed ? this.add(key) : undefined);
    if (!w) return;
    // The window may have been evicted and made anew since the reservation.
    if (w.pending > 0) w.pending--;
    if (failed) {
      if (w.count === 0) w.start = this.now();
      w.count++;
    }
    if (w.count === 0 && w.pending === 0) this.windows.delete(key);
  }

  /** The key's window, its failures forgotten once the window is over. */
  private current(key: string): Window | undefined {
    const w = this.windows.get(key);
    if (!w || w.count === 0 || this.now() - w.start < this.windowMs) return w;
    w.count = 0;
    w.start = 0;
    if (w.pending > 0) return w;
    this.windows.delete(key);
    return undefined;
  }

  private add(key: string): Window {
    if (this.windows.size >= this.maxKeys) {
      const oldest = this.windows.keys().next();
      if (!oldest.done) this.windows.delete(oldest.value);
    }
    const w: Window = { start: 0, count: 0, pending: 0 };
    this.windows.set(key, w);
    return w;
  }

  get size(): number {
    return this.windows.size;
  }
}
