/**
 * This gateway process as the other processes see it on Redis: an instance
 * id, a liveness key refreshed every few seconds (its value is where this
 * process takes fallback hops), and its own connection counts.
 *
 * The counts in Redis are fields named by instance id; they count only while
 * the liveness key lives. When it was missing at a heartbeat (Redis restarted
 * or flushed, or was away longer than the key lives) or a release could not be
 * sent, the process writes its true counts, which it keeps here, back to Redis.
 */
import { randomBytes } from 'node:crypto';
import type { RedisContext } from './redis-context.js';

const HEARTBEAT_MS = 5_000;
const LIVENESS_MS = 15_000;
/** Address hashes outlive their last reservation this long; live processes refresh theirs. */
const ADDRESS_TTL_MS = 90_000;
/** Every this many heartbeats the address hashes this process counts in are refreshed. */
const REFRESH_EVERY = 6;

export class InstanceRegistry {
  readonly id = randomBytes(9).toString('base64url');
  readonly addressTtlMs = ADDRESS_TTL_MS;
  private readonly byAddress = new Map<string, number>();
  private readonly byService = new Map<string, number>();
  private total = 0;
  /** (address, service) pairs whose Redis count may be wrong, zero counts included. */
  private readonly suspects = new Set<string>();
  private needsResync = true;
  private beats = 0;
  private timer?: NodeJS.Timeout;
  private closed = false;

  /** `hop`: this process's hop URL, the value of its liveness key ('-': none yet). */
  constructor(private readonly ctx: RedisContext, private hop = '-') {
    this.timer = setInterval(() => { void this.heartbeat(); }, HEARTBEAT_MS);
    this.timer.unref();
    ctx.client.on('ready', () => { void this.heartbeat(); });
    if (ctx.ready) void this.heartbeat();
  }

  /** The prefix of liveness keys (the scripts append an instance id). */
  get livenessPrefix(): string { return this.ctx.key('live:'); }

  /** Says where this process takes hops (once its hop listener listens). */
  setHop(url: string): Promise<void> {
    this.hop = url;
    return this.heartbeat();
  }

  /** Where instance `id` takes hops; undefined when it is not alive. */
  async hopOf(id: string): Promise<string | undefined> {
    const v = await this.ctx.command((c) => c.get(this.livenessPrefix + id));
    return v === null || v === '-' ? undefined : v;
  }

  /** Keeps this process's own count of (address, service) in step with Redis. */
  counted(address: string, service: string, delta: 1 | -1): void {
    bump(this.byAddress, address, delta);
    bump(this.byService, service, delta);
    this.total += delta;
  }

  /** Redis may count (address, service) wrongly (an answer was lost): write the true counts back at the next heartbeat. */
  stale(address: string, service: string): void {
    this.suspects.add(`${address}\0${service}`);
    this.needsResync = true;
  }

  /** Refreshes the liveness key; writes the counts back when Redis lost them. */
  async heartbeat(): Promise<void> {
    if (this.closed || !this.ctx.ready) return;
    try {
      const before = await this.ctx.command((c) => c.set(this.livenessPrefix + this.id, this.hop, 'PX', LIVENESS_MS, 'GET'));
      if (before === null) this.needsResync = true;
      if (this.needsResync) await this.resync();
      else if (++this.beats % REFRESH_EVERY === 0) await this.refresh();
    } catch (err) {
      this.ctx.fellBack('connection counts', err);
      this.needsResync = true;
    }
  }

  private async resync(): Promise<void> {
    const p = this.ctx.client.pipeline();
    for (const [a, n] of this.byAddress) p.hset(this.ctx.key(`ca:${a}`), this.id, n).pexpire(this.ctx.key(`ca:${a}`), ADDRESS_TTL_MS);
    for (const [s, n] of this.byService) p.hset(this.ctx.key(`cs:${s}`), this.id, n);
    if (this.total > 0) p.hset(this.ctx.key('ct'), this.id, this.total);
    else p.hdel(this.ctx.key('ct'), this.id);
    const suspects = [...this.suspects];
    this.suspects.clear();
    for (const pair of suspects) {
      const [a, s] = pair.split('\0');
      if (!this.byAddress.has(a)) p.hdel(this.ctx.key(`ca:${a}`), this.id);
      if (!this.byService.has(s)) p.hdel(this.ctx.key(`cs:${s}`), this.id);
    }
    try {
      await p.exec();
      this.needsResync = false;
    } catch (err) {
      for (const pair of suspects) this.suspects.add(pair);
      throw err;
    }
  }

  private async refresh(): Promise<void> {
    if (this.byAddress.size === 0) return;
    const p = this.ctx.client.pipeline();
    for (const a of this.byAddress.keys()) p.pexpire(this.ctx.key(`ca:${a}`), ADDRESS_TTL_MS);
    await p.exec();
  }

  /** Leaves: the liveness key and this process's fields go (the connections have ended by now). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (!this.ctx.ready) return;
    const p = this.ctx.client.pipeline();
    p.del(this.livenessPrefix + this.id);
    for (const a of this.byAddress.keys()) p.hdel(this.ctx.key(`ca:${a}`), this.id);
    for (const s of this.byService.keys()) p.hdel(this.ctx.key(`cs:${s}`), this.id);
    p.hdel(this.ctx.key('ct'), this.id);
    await p.exec().catch(() => undefined);
  }
}

function bump(map: Map<string, number>, key: string, delta: number): void {
  const n = (map.get(key) ?? 0) + delta;
  if (n <= 0) map.delete(key); else map.set(key, n);
}
