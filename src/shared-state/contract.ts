/**
 * The contract of shared state: what guards security across connections and
 * must outlive a configuration reload — failed-attempt counts, the ids of
 * single-use tickets already used, the tickets issued and not yet used, the
 * handshake rate and the open connections per client address — and, once
 * several gateway processes serve one site, be shared by all of them.
 *
 * Implementations: in-process (`memory.ts`, made once by the composition root
 * and handed to every configuration it loads); a Redis one can follow without
 * changing callers: every method may answer with a promise (a round trip), and
 * callers always `await` the answer. Each operation that decides alone (take a
 * ticket, claim an id, reserve an attempt) is atomic in the implementation —
 * one `GETDEL`, `SET NX` or script on Redis — so racing requests never both win.
 */
import type { Principal } from '../admitted.js';

export type Awaitable<T> = T | Promise<T>;

/** Limits of one attempt counter, passed with each call so a reload's new values apply to the counts kept. */
export interface AttemptLimits {
  /** Failures (and attempts under way) a key may have in one window. */
  limit: number;
  windowMs: number;
}

/**
 * Failed attempts per key in fixed windows. An attempt is reserved before its
 * credentials are checked and settled with its verdict; attempts under way
 * count against the budget, so parallel attempts cannot all pass.
 */
export interface AttemptCounter {
  /** 0: reserved, settle it exactly once; otherwise the milliseconds until `key` may try again. */
  reserve(key: string, limits: AttemptLimits): Awaitable<number>;
  /** Ends a reserved attempt; `failed` counts it against the key. */
  settle(key: string, failed: boolean, limits: AttemptLimits): Awaitable<void>;
}

/** Ids that can be claimed once until they expire (the `jti` of backend-minted tickets). */
export interface SingleUseIds {
  /** `claimed` the first time; `used` ever after, until `expiresAt`; `full` when no more can be remembered. */
  claim(id: string, expiresAt: number): Awaitable<'claimed' | 'used' | 'full'>;
}

/** A ticket the gateway issued: who it was issued to, for what, until when. */
export interface IssuedTicket {
  service: string;
  /** The serialised Origin of the issuing request; null when it had none. */
  origin: string | null;
  /**
   * Plain data. An in-process store keeps the very object (with the `forward`
   * method's re-check attached, auth/recheck.ts); a store shared by processes
   * returns a copy, whose re-check is rebuilt from `recheck`.
   */
  principal: Principal;
  /** Epoch milliseconds. */
  expiresAt: number;
  /** The principal's credential re-check as plain data (method, what it re-sends), when it has one. */
  recheck?: { method: string; data: Record<string, string> };
}

export type IssueResult =
  | { ok: true }
  /** The owner has `perOwner` tickets outstanding; the oldest expires in `retryAfterMs`. */
  | { ok: false; reason: 'owner_full'; retryAfterMs: number }
  | { ok: false; reason: 'full' };

/** Issued tickets: each taken at most once, capped per owner (a principal) and in all. */
export interface TicketVault {
  put(id: string, ticket: IssuedTicket, owner: string, perOwner: number): Awaitable<IssueResult>;
  /** Removes and returns the ticket (expired ones too: the caller says why it is refused); undefined when unknown. */
  take(id: string): Awaitable<IssuedTicket | undefined>;
}

/** The handshake bucket of one address, passed with each call so a reload's new values apply. */
export interface RateLimits {
  /** Tokens per second. */
  rate: number;
  /** Most tokens a bucket holds. */
  burst: number;
}

/** Handshakes per client address key (IPv6: /64): one token bucket each. */
export interface HandshakeBuckets {
  /** Takes one token for `key`: 0 when taken, else the milliseconds until one is there. */
  take(key: string, limits: RateLimits): Awaitable<number>;
}

export interface ConnectionLimits {
  perAddress: number;
  /** The service's own limit, when it has one. */
  perService?: number;
  total: number;
}

/** Which limit refused a connection. */
export type SlotRefusal = 'address' | 'service' | 'total';

/**
 * Open connections per client address key, per service and in all. A slot is
 * counted in all three at once, and only when each is under its limit: one
 * atomic step, so racing handshakes never overshoot a limit together.
 */
export interface ConnectionSlots {
  reserve(address: string, service: string, limits: ConnectionLimits): Awaitable<'ok' | SlotRefusal>;
  /** Gives one reserved slot back. Never fails for the caller: a shared implementation retries or reconciles on its own. */
  release(address: string, service: string): void;
}

export interface SharedState {
  /** Failed authentications per client address key (IPv6: /64). */
  readonly addressFailures: AttemptCounter;
  /** Failed authentications per (user name, address key). */
  readonly userFailures: AttemptCounter;
  readonly usedTicketIds: SingleUseIds;
  readonly issuedTickets: TicketVault;
  readonly handshakes: HandshakeBuckets;
  readonly connections: ConnectionSlots;
}
