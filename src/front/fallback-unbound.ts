/**
 * Fallback requests that hold a socket but no connection slot yet: an open
 * until the admission pipeline has decided (then the admission holds the
 * session's slot), a session request until its body has shown the session's
 * key (then it is the session's, which has one upload and one downstream at a
 * time). A body that stalls would otherwise hold its socket for
 * `request_timeout` with nothing counting it. They are counted per client
 * address (IPv6 per /64), against `limits.connections_per_address`; addresses
 * in `limits.exempt_addresses` are not counted, as for connections, and a
 * limit of 0 is no limit.
 */
import type { ServerResponse } from 'node:http';
import { exemptAddresses, orNoLimit, type LimitsConfig } from '../config/limits.js';
import { addressKey } from '../http/cidr.js';

const NOTHING_HELD = (): void => undefined;

export class UnboundRequests {
  private readonly counts = new Map<string, number>();

  /**
   * Counts a request of `address`; its count ends when the returned function
   * is called or the response closes, whichever comes first. Undefined when
   * the address already has `connections_per_address` such requests.
   */
  enter(res: ServerResponse, address: string | undefined, limits: LimitsConfig): (() => void) | undefined {
    if (address === undefined || exemptAddresses(limits).has(address)) return NOTHING_HELD;
    const key = addressKey(address);
    const n = this.counts.get(key) ?? 0;
    if (n >= orNoLimit(limits.connections_per_address)) return undefined;
    this.counts.set(key, n + 1);
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left === 0) this.counts.delete(key);
      else this.counts.set(key, left);
    };
    res.once('close', release);
    return release;
  }

  /** Address keys with requests counted now. */
  get size(): number {
    return this.counts.size;
  }
}
