/**
 * The shared state on Redis (`cluster.redis`): every gateway process of every
 * machine counts and decides in one place. Each operation is one command or
 * one script (redis-scripts.ts), so it is atomic across processes.
 *
 * When Redis cannot be reached (not connected, or no answer within
 * `cluster.redis_timeout`):
 *  - tickets fail closed: issuing, taking and claiming throw
 *    SharedStateUnavailable, and the handshake is refused with 503;
 *  - limits (handshake rate, connection counts, failure counters) are counted
 *    in this process meanwhile (each process then enforces them on its own,
 *    so a fleet of N admits up to N times a limit); a warning says so.
 *
 * Issued tickets are stored sealed: the Redis key is a hash of the ticket and
 * the value is AES-256-GCM encrypted with a key derived from the ticket, so
 * whoever reads Redis learns neither tickets nor whom they were issued to.
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type {
  AttemptCounter, AttemptLimits, ConnectionLimits, ConnectionSlots, HandshakeBuckets, IssueResult, IssuedTicket,
  RateLimits, SharedState, SingleUseIds, SlotRefusal, TicketVault,
} from '../shared-state/contract.js';
import { MemoryAttemptCounter } from '../shared-state/memory.js';
import { MemoryConnectionSlots, MemoryHandshakeBuckets } from '../shared-state/memory-admission.js';
import type { RedisClient } from './redis.js';
import { RedisContext } from './redis-context.js';
import { InstanceRegistry } from './redis-instances.js';

export { RedisContext };

/** How long a key blocked only by its own attempts under way is asked to wait (as in memory.ts). */
const IN_FLIGHT_RETRY_MS = 1000;
/** An attempt under way (its credentials being checked) stops counting after this, should it never be settled. */
const ATTEMPT_UNDER_WAY_MS = 30_000;
/** Issued tickets are kept this long past their expiry, so a late one is told `expired`, not `unknown`. */
const EXPIRED_GRACE_MS = 60_000;

/** A multiset of keys: which reservations were made locally (their settle or release goes there too). */
class Held {
  private readonly n = new Map<string, number>();
  add(k: string): void { this.n.set(k, (this.n.get(k) ?? 0) + 1); }
  /** Takes one; false when none is held. */
  take(k: string): boolean {
    const v = this.n.get(k);
    if (!v) return false;
    if (v === 1) this.n.delete(k); else this.n.set(k, v - 1);
    return true;
  }
}

export class RedisAttemptCounter implements AttemptCounter {
  private readonly local = new MemoryAttemptCounter();
  private readonly held = new Held();
  /** key → tokens of this process's attempts under way in Redis (any one settles any attempt of the key). */
  private readonly tokens = new Map<string, string[]>();
  constructor(private readonly ctx: RedisContext, private readonly name: string) {}

  async reserve(key: string, limits: AttemptLimits): Promise<number> {
    const token = randomBytes(9).toString('base64url');
    try {
      const wait = await this.ctx.script('ghReserveAttempt', this.keys(key), [limits.limit, limits.windowMs, ATTEMPT_UNDER_WAY_MS, token, IN_FLIGHT_RETRY_MS]);
      if (wait === 0) {
        const list = this.tokens.get(key);
        if (list) list.push(token); else this.tokens.set(key, [token]);
      }
      return wait;
    } catch (err) {
      // (A reservation that timed out may still be made in Redis later: its token expires there on its own.)
      this.ctx.fellBack('authentication failures', err);
      const wait = this.local.reserve(key, limits);
      if (wait === 0) this.held.add(key);
      return wait;
    }
  }

  async settle(key: string, failed: boolean, limits: AttemptLimits): Promise<void> {
    if (this.held.take(key)) { this.local.settle(key, failed, limits); return; }
    const list = this.tokens.get(key);
    const token = list?.shift() ?? '';
    if (list?.length === 0) this.tokens.delete(key);
    try {
      await this.ctx.script('ghSettleAttempt', this.keys(key), [failed ? '1' : '0', limits.windowMs, '', token]);
    } catch (err) {
      // The token expires on its own; the failure is counted here meanwhile.
      this.ctx.fellBack('authentication failures', err);
      if (failed && this.local.reserve(key, limits) === 0) this.local.settle(key, true, limits);
    }
  }

  private keys(key: string): string[] {
    return [this.ctx.key(`${this.name}:${key}`), this.ctx.key(`${this.name}p:${key}`)];
  }
}

export class RedisSingleUseIds implements SingleUseIds {
  constructor(private readonly ctx: RedisContext) {}

  async claim(id: string, expiresAt: number): Promise<'claimed' | 'used' | 'full'> {
    const key = this.ctx.key(`jti:${digest(id)}`);
    const r = await this.ctx.command((c) => c.set(key, '1', 'PXAT', Math.max(expiresAt, Date.now() + 1000), 'NX'));
    return r === 'OK' ? 'claimed' : 'used';
  }
}

export class RedisTicketVault implements TicketVault {
  constructor(private readonly ctx: RedisContext) {}

  async put(id: string, ticket: IssuedTicket, owner: string, perOwner: number): Promise<IssueResult> {
    const keep = Math.max(1, ticket.expiresAt - Date.now()) + EXPIRED_GRACE_MS;
    const member = digest(id);
    const wait = await this.ctx.script('ghPutTicket', [this.ticketKey(id), this.ownerKey(owner)],
      [seal(id, { ticket, owner }), keep, ticket.expiresAt, Number.isFinite(perOwner) ? perOwner : -1, member]);
    return wait === 0 ? { ok: true } : { ok: false, reason: 'owner_full', retryAfterMs: wait };
  }

  async take(id: string): Promise<IssuedTicket | undefined> {
    const sealed = await this.ctx.command((c) => c.getdel(this.ticketKey(id)));
    if (sealed === null) return undefined;
    const entry = unseal(id, sealed) as { ticket: IssuedTicket; owner: string } | undefined;
    if (!entry) return undefined;
    // Off the owner's list (best effort: the entry expires with its score anyway).
    void this.ctx.command((c) => c.zrem(this.ownerKey(entry.owner), digest(id))).catch(() => undefined);
    return entry.ticket;
  }

  private ticketKey(id: string): string { return this.ctx.key(`tk:${digest(id)}`); }
  private ownerKey(owner: string): string { return this.ctx.key(`tko:${digest(owner)}`); }
}

export class RedisHandshakeBuckets implements HandshakeBuckets {
  private readonly local = new MemoryHandshakeBuckets();
  constructor(private readonly ctx: RedisContext) {}

  async take(key: string, limits: RateLimits): Promise<number> {
    try {
      return await this.ctx.script('ghTakeToken', [this.ctx.key(`hs:${key}`)], [limits.rate, limits.burst]);
    } catch (err) {
      this.ctx.fellBack('handshake rate', err);
      return this.local.take(key, limits);
    }
  }
}

const REFUSALS: Record<number, SlotRefusal> = { 1: 'address', 2: 'service', 3: 'total' };

/**
 * Connection slots: a hash per address, per service and in total, with a
 * field per gateway process (its instance id). A process's fields count only
 * while its liveness key exists (redis-instances.ts); a dead process's are
 * dropped by the next reservation that reads them.
 */
export class RedisConnectionSlots implements ConnectionSlots {
  private readonly local = new MemoryConnectionSlots();
  private readonly held = new Held();

  constructor(private readonly ctx: RedisContext, private readonly instances: InstanceRegistry) {}

  async reserve(address: string, service: string, limits: ConnectionLimits): Promise<'ok' | SlotRefusal> {
    try {
      const r = await this.ctx.script('ghReserveSlot', this.keys(address, service), [
        this.instances.id, this.instances.livenessPrefix, limits.perAddress, limits.perService ?? -1, limits.total, this.instances.addressTtlMs,
      ]);
      if (r !== 0) return REFUSALS[r] ?? 'total';
      this.instances.counted(address, service, 1);
      return 'ok';
    } catch (err) {
      this.ctx.fellBack('connection counts', err);
      // A reservation that timed out may still be made in Redis later: the true count is written back.
      this.instances.stale(address, service);
      const r = this.local.reserve(address, service, limits);
      if (r === 'ok') this.held.add(`${address}\0${service}`);
      return r;
    }
  }

  release(address: string, service: string): void {
    if (this.held.take(`${address}\0${service}`)) { this.local.release(address, service); return; }
    this.instances.counted(address, service, -1);
    this.ctx.script('ghReleaseSlot', this.keys(address, service), [this.instances.id]).catch(() => {
      // Redis missed it: the registry writes this process's true counts back when Redis returns.
      this.instances.stale(address, service);
    });
  }

  private keys(address: string, service: string): string[] {
    return [this.ctx.key(`ca:${address}`), this.ctx.key(`cs:${service}`), this.ctx.key('ct')];
  }
}

export class RedisSharedState implements SharedState {
  readonly addressFailures: RedisAttemptCounter;
  readonly userFailures: RedisAttemptCounter;
  readonly usedTicketIds: RedisSingleUseIds;
  readonly issuedTickets: RedisTicketVault;
  readonly handshakes: RedisHandshakeBuckets;
  readonly connections: RedisConnectionSlots;
  readonly instances: InstanceRegistry;

  constructor(client: RedisClient, opts: { prefix: string; log: Logger; hop?: string }) {
    const ctx = new RedisContext(client, opts.prefix, opts.log);
    this.instances = new InstanceRegistry(ctx, opts.hop);
    this.addressFailures = new RedisAttemptCounter(ctx, 'fa');
    this.userFailures = new RedisAttemptCounter(ctx, 'fu');
    this.usedTicketIds = new RedisSingleUseIds(ctx);
    this.issuedTickets = new RedisTicketVault(ctx);
    this.handshakes = new RedisHandshakeBuckets(ctx);
    this.connections = new RedisConnectionSlots(ctx, this.instances);
  }

  /** Registers this process (its liveness key) before it counts anything; resolves even when Redis is away. */
  start(): Promise<void> {
    return this.instances.heartbeat();
  }

  /** Stops the heartbeat and removes this process's counts; the connection itself is the caller's. */
  close(): Promise<void> {
    return this.instances.close();
  }
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('base64url');
}

function ticketKey(id: string): Buffer {
  return Buffer.from(hkdfSync('sha256', id, 'gatehouse-ticket', 'seal', 32));
}

/** AES-256-GCM under a key only the ticket's holder can derive: iv · tag · ciphertext, base64url. */
function seal(id: string, value: unknown): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', ticketKey(id), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

function unseal(id: string, sealed: string): unknown {
  try {
    const raw = Buffer.from(sealed, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', ticketKey(id), raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return JSON.parse(Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8'));
  } catch {
    return undefined;
  }
}
