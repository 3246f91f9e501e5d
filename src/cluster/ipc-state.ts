/**
 * The shared state of the workers of one machine without Redis: the primary
 * process keeps the one in-process state (`MemorySharedState`) and every
 * worker reaches it over IPC. Each operation runs whole in the primary, so a
 * ticket taken by one worker is gone for all, and the limits count every
 * worker's handshakes and connections.
 *
 * The primary also knows which worker holds which connection slot: when a
 * worker dies its slots are given back at once (its connections died with it).
 */
import type {
  AttemptLimits, ConnectionLimits, ConnectionSlots, HandshakeBuckets, IssueResult, IssuedTicket, RateLimits,
  SharedState, SingleUseIds, SlotRefusal, TicketVault, AttemptCounter,
} from '../shared-state/contract.js';
import { MemorySharedState } from '../shared-state/memory.js';
import type { IpcClient, Served } from './ipc.js';

/** A worker's view: every call a round trip to the primary. */
export function ipcSharedState(client: IpcClient): SharedState {
  const counter = (target: string): AttemptCounter => ({
    reserve: (key: string, limits: AttemptLimits) => client.call<number>(target, 'reserve', [key, limits]),
    settle: (key: string, failed: boolean, limits: AttemptLimits) => client.call<undefined>(target, 'settle', [key, failed, limits]),
  });
  const usedTicketIds: SingleUseIds = {
    claim: (id: string, expiresAt: number) => client.call<'claimed' | 'used' | 'full'>('usedTicketIds', 'claim', [id, expiresAt]),
  };
  const issuedTickets: TicketVault = {
    put: (id: string, ticket: IssuedTicket, owner: string, perOwner: number) => client.call<IssueResult>('issuedTickets', 'put', [id, ticket, owner, perOwner]),
    take: (id: string) => client.call<IssuedTicket | undefined>('issuedTickets', 'take', [id]),
  };
  const handshakes: HandshakeBuckets = {
    take: (key: string, limits: RateLimits) => client.call<number>('handshakes', 'take', [key, limits]),
  };
  const connections: ConnectionSlots = {
    reserve: (address: string, service: string, limits: ConnectionLimits) => client.call<'ok' | SlotRefusal>('connections', 'reserve', [address, service, limits]),
    release: (address: string, service: string) => client.notify('connections', 'release', [address, service]),
  };
  return {
    addressFailures: counter('addressFailures'), userFailures: counter('userFailures'),
    usedTicketIds, issuedTickets, handshakes, connections,
  };
}

/** The primary's side: the state itself, served to each worker with its slots remembered per worker. */
export class PrimaryState {
  readonly state = new MemorySharedState();
  /** worker id → "address\0service" → slots it holds */
  private readonly slots = new Map<number, Map<string, number>>();

  /** What a worker's calls run on. */
  targetsFor(worker: number): (name: string) => Served | undefined {
    const s = this.state;
    const connections: Served = {
      reserve: (address: string, service: string, limits: ConnectionLimits) => {
        const r = s.connections.reserve(address, service, limits);
        if (r === 'ok') this.count(worker, address, service, 1);
        return r;
      },
      release: (address: string, service: string) => {
        if (this.count(worker, address, service, -1)) s.connections.release(address, service);
      },
    };
    const table: Record<string, Served> = {
      addressFailures: s.addressFailures as unknown as Served,
      userFailures: s.userFailures as unknown as Served,
      usedTicketIds: s.usedTicketIds as unknown as Served,
      issuedTickets: s.issuedTickets as unknown as Served,
      handshakes: s.handshakes as unknown as Served,
      connections,
    };
    return (name) => table[name];
  }

  /** A worker ended: the slots it held are free. */
  workerGone(worker: number): number {
    const mine = this.slots.get(worker);
    this.slots.delete(worker);
    if (!mine) return 0;
    let freed = 0;
    for (const [key, n] of mine) {
      const [address, service] = key.split('\0');
      for (let i = 0; i < n; i++) this.state.connections.release(address, service);
      freed += n;
    }
    return freed;
  }

  /** Adds `delta` to a worker's slots of (address, service); false when a release finds none (already freed). */
  private count(worker: number, address: string, service: string, delta: 1 | -1): boolean {
    let mine = this.slots.get(worker);
    if (!mine) { mine = new Map(); this.slots.set(worker, mine); }
    const key = `${address}\0${service}`;
    const n = (mine.get(key) ?? 0) + delta;
    if (n < 0) return false;
    if (n === 0) mine.delete(key); else mine.set(key, n);
    return true;
  }
}
