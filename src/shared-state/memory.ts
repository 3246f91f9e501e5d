/**
 * The in-process shared state: Maps in this process. The composition root makes
 * one and hands it to every configuration it loads, so a reload keeps the
 * failure counts, the used ticket ids and the tickets issued. Every answer is
 * synchronous, so each operation is atomic. Memory is bounded: each store
 * holds at most `maxKeys` entries.
 */
import { monoClock } from '../clock.js';
import { MemoryConnectionSlots, MemoryHandshakeBuckets } from './memory-admission.js';
import type {
  AttemptCounter, AttemptLimits, IssueResult, IssuedTicket, SharedState, SingleUseIds, TicketVault,
} from './contract.js';

const MAX_KEYS = 100_000;
/** How long a key blocked only by its own attempts under way is asked to wait: they end within seconds. */
const IN_FLIGHT_RETRY_MS = 1000;

export type Clock = () => number;

interface Window {
  /** When the first failure of this window happened; 0 while there is none. */
  start: number;
  count: number;
  /** Attempts reserved and not yet settled. */
  pending: number;
}

/**
 * Fixed windows per key. When full, the oldest window is dropped first (an
 * attacker rotating addresses only ever evicts stale entries).
 *
 * Windows run on the monotonic clock, like the handshake buckets: on the wall
 * clock a step forward (NTP, an operator) would end every lockout at once, a
 * step back would make one last until the clock caught up again.
 */
export class MemoryAttemptCounter implements AttemptCounter {
  private readonly windows = new Map<string, Window>();
  /** Ended windows are forgotten on use, at most once a second: memory follows the keys that failed lately, not every key that ever did. */
  private readonly sweeper: Sweeper;
  /** The window length of the latest call (limits come with each call: a reload may change them). */
  private windowMs = 0;

  constructor(private readonly maxKeys = MAX_KEYS, private readonly now: Clock = monoClock) {
    this.sweeper = new Sweeper(now, (t) => {
      for (const [k, w] of this.windows) if (w.pending === 0 && t - w.start >= this.windowMs) this.windows.delete(k);
    });
  }

  reserve(key: string, limits: AttemptLimits): number {
    this.windowMs = limits.windowMs;
    this.sweeper.maybe();
    const w = this.current(key, limits);
    if (w && w.count + w.pending >= limits.limit) {
      return w.count >= limits.limit ? limits.windowMs - (this.now() - w.start) : IN_FLIGHT_RETRY_MS;
    }
    (w ?? this.add(key)).pending++;
    return 0;
  }

  settle(key: string, failed: boolean, limits: AttemptLimits): void {
    const w = this.current(key, limits) ?? (failed ? this.add(key) : undefined);
    if (!w) return;
    // The window may have been evicted and made anew since the reservation.
    if (w.pending > 0) w.pending--;
    if (failed) {
      if (w.count === 0) w.start = this.now();
      w.count++;
    }
    if (w.count === 0 && w.pending === 0) this.windows.delete(key);
  }

  get size(): number {
    return this.windows.size;
  }

  /** The key's window, its failures forgotten once the window is over. */
  private current(key: string, limits: AttemptLimits): Window | undefined {
    const w = this.windows.get(key);
    if (!w || w.count === 0 || this.now() - w.start < limits.windowMs) return w;
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
}

/** Expired entries are swept at most once a second, on use. */
class Sweeper {
  private last = 0;
  constructor(private readonly now: Clock, private readonly sweep: (now: number) => void) {}
  maybe(): number {
    const now = this.now();
    if (now - this.last >= 1000) {
      this.last = now;
      this.sweep(now);
    }
    return now;
  }
}

export class MemorySingleUseIds implements SingleUseIds {
  /** id → when it may be forgotten (ms) */
  private readonly used = new Map<string, number>();
  private readonly sweeper: Sweeper;

  constructor(private readonly maxKeys = MAX_KEYS, now: Clock = Date.now) {
    this.sweeper = new Sweeper(now, (t) => { for (const [k, exp] of this.used) if (exp <= t) this.used.delete(k); });
  }

  claim(id: string, expiresAt: number): 'claimed' | 'used' | 'full' {
    this.sweeper.maybe();
    if (this.used.has(id)) return 'used';
    if (this.used.size >= this.maxKeys) return 'full';
    this.used.set(id, expiresAt);
    return 'claimed';
  }
}

export class MemoryTicketVault implements TicketVault {
  private readonly tickets = new Map<string, { ticket: IssuedTicket; owner: string }>();
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly sweeper: Sweeper;

  constructor(private readonly maxKeys = MAX_KEYS, now: Clock = Date.now) {
    this.sweeper = new Sweeper(now, (t) => {
      for (const [id, e] of this.tickets) if (e.ticket.expiresAt <= t) this.remove(id, e.owner);
    });
  }

  put(id: string, ticket: IssuedTicket, owner: string, perOwner: number): IssueResult {
    const now = this.sweeper.maybe();
    const mine = this.byOwner.get(owner);
    if (mine && mine.size >= perOwner) {
      let oldest = Infinity;
      for (const t of mine) {
        const exp = this.tickets.get(t)!.ticket.expiresAt;
        if (exp <= now) this.remove(t, owner);
        else oldest = Math.min(oldest, exp);
      }
      if (mine.size >= perOwner) return { ok: false, reason: 'owner_full', retryAfterMs: oldest - now };
    }
    if (this.tickets.size >= this.maxKeys) return { ok: false, reason: 'full' };
    this.tickets.set(id, { ticket, owner });
    if (!this.byOwner.has(owner)) this.byOwner.set(owner, new Set());
    this.byOwner.get(owner)!.add(id);
    return { ok: true };
  }

  take(id: string): IssuedTicket | undefined {
    const e = this.tickets.get(id);
    if (!e) return undefined;
    this.remove(id, e.owner);
    return e.ticket;
  }

  get size(): number {
    return this.tickets.size;
  }

  private remove(id: string, owner: string): void {
    this.tickets.delete(id);
    const mine = this.byOwner.get(owner);
    if (!mine) return;
    mine.delete(id);
    if (mine.size === 0) this.byOwner.delete(owner);
  }
}

export class MemorySharedState implements SharedState {
  readonly addressFailures: MemoryAttemptCounter;
  readonly userFailures: MemoryAttemptCounter;
  readonly usedTicketIds: MemorySingleUseIds;
  readonly issuedTickets: MemoryTicketVault;
  readonly handshakes = new MemoryHandshakeBuckets();
  readonly connections = new MemoryConnectionSlots();

  /** `now`: the wall clock of the ticket stores, whose expiries are absolute times carried in the tickets. */
  constructor(opts: { maxKeys?: number; now?: Clock } = {}) {
    const { maxKeys = MAX_KEYS, now = Date.now } = opts;
    this.addressFailures = new MemoryAttemptCounter(maxKeys);
    this.userFailures = new MemoryAttemptCounter(maxKeys);
    this.usedTicketIds = new MemorySingleUseIds(maxKeys, now);
    this.issuedTickets = new MemoryTicketVault(maxKeys, now);
  }
}
