/**
 * State the admission checks share across services and keep across config
 * reloads: handshake buckets per client address and the open-connection counts
 * (per address, per service, total). The composition root may create one and
 * pass it in `CheckEnv.state` so that a reload does not forget open connections;
 * otherwise one is made per CheckEnv.
 */
import type { LimitsConfig } from '../config/limits.js';
import { KeyedBuckets } from './token-bucket.js';

export class ConnectionCounts {
  total = 0;
  private readonly byAddress = new Map<string, number>();
  private readonly byService = new Map<string, number>();

  ofAddress(key: string): number {
    return this.byAddress.get(key) ?? 0;
  }

  ofService(name: string): number {
    return this.byService.get(name) ?? 0;
  }

  /** Count one connection; returns the undo. */
  reserve(addressKey: string, service: string): () => void {
    this.add(addressKey, service);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.remove(addressKey, service);
    };
  }

  /** Count one connection; the caller undoes it exactly once with `remove`. */
  add(addressKey: string, service: string): void {
    this.total++;
    this.byAddress.set(addressKey, this.ofAddress(addressKey) + 1);
    this.byService.set(service, this.ofService(service) + 1);
  }

  remove(addressKey: string, service: string): void {
    this.total--;
    decrement(this.byAddress, addressKey);
    decrement(this.byService, service);
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}

export class AdmissionState {
  readonly connections = new ConnectionCounts();
  private buckets?: { rate: number; burst: number; keyed: KeyedBuckets };

  /** The per-address handshake buckets for these limits (rebuilt if a reload changed them). */
  handshakeBuckets(limits: Pick<LimitsConfig, 'handshake_rate' | 'handshake_burst'>): KeyedBuckets {
    const b = this.buckets;
    if (b && b.rate === limits.handshake_rate && b.burst === limits.handshake_burst) return b.keyed;
    const keyed = new KeyedBuckets(limits.handshake_rate, limits.handshake_burst);
    this.buckets = { rate: limits.handshake_rate, burst: limits.handshake_burst, keyed };
    return keyed;
  }
}

const perEnv = new WeakMap<object, AdmissionState>();

/** The state for a CheckEnv: its own `state`, else one made for (and kept with) that env object. */
export function admissionStateOf(env: { state?: AdmissionState }): AdmissionState {
  if (env.state) return env.state;
  let s = perEnv.get(env);
  if (!s) {
    s = new AdmissionState();
    perEnv.set(env, s);
  }
  return s;
}
