/**
 * The in-process handshake buckets and connection slots (the admission
 * checks' share of the shared state): Maps in this process, every answer
 * synchronous, so a check and its count are one step and a handshake costs
 * no promise. Memory follows the clients active now: full buckets are swept,
 * a count that reaches zero is deleted.
 */
import { monoClock } from '../clock.js';
import type { ConnectionLimits, ConnectionSlots, HandshakeBuckets, RateLimits, SlotRefusal } from './contract.js';
import { KeyedBuckets } from './token-bucket.js';

export class MemoryHandshakeBuckets implements HandshakeBuckets {
  private buckets?: { rate: number; burst: number; keyed: KeyedBuckets };

  /** `now`: the monotonic clock, so a step of the wall clock neither freezes the refill nor fills every bucket. */
  constructor(private readonly now: () => number = monoClock) {}

  take(key: string, limits: RateLimits): number {
    return this.keyed(limits).take(key, this.now());
  }

  /** Keys with a bucket kept now (full buckets are swept away on use). */
  get size(): number {
    return this.buckets?.keyed.size ?? 0;
  }

  /** The buckets for these limits (made anew when a reload changed them). */
  private keyed(limits: RateLimits): KeyedBuckets {
    const b = this.buckets;
    if (b && b.rate === limits.rate && b.burst === limits.burst) return b.keyed;
    const keyed = new KeyedBuckets(limits.rate, limits.burst);
    this.buckets = { rate: limits.rate, burst: limits.burst, keyed };
    return keyed;
  }
}

export class MemoryConnectionSlots implements ConnectionSlots {
  private total = 0;
  private readonly byAddress = new Map<string, number>();
  private readonly byService = new Map<string, number>();

  reserve(address: string, service: string, limits: ConnectionLimits): 'ok' | SlotRefusal {
    if ((this.byAddress.get(address) ?? 0) >= limits.perAddress) return 'address';
    if (limits.perService !== undefined && (this.byService.get(service) ?? 0) >= limits.perService) return 'service';
    if (this.total >= limits.total) return 'total';
    this.total++;
    this.byAddress.set(address, (this.byAddress.get(address) ?? 0) + 1);
    this.byService.set(service, (this.byService.get(service) ?? 0) + 1);
    return 'ok';
  }

  release(address: string, service: string): void {
    this.total--;
    decrement(this.byAddress, address);
    decrement(this.byService, service);
  }

  /** Address keys with connections counted now. */
  get size(): number {
    return this.byAddress.size;
  }

  /** Open connections counted now: in all, of one address key, of one service. */
  count(of?: { address?: string; service?: string }): number {
    if (of?.address !== undefined) return this.byAddress.get(of.address) ?? 0;
    if (of?.service !== undefined) return this.byService.get(of.service) ?? 0;
    return this.total;
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
