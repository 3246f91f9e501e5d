/**
 * Calls between a worker and the primary process over the IPC channel
 * node:cluster sets up (structured-clone serialization). A worker calls a
 * method of an object the primary serves and awaits its answer; the primary
 * answers in the order calls arrive, so what the primary decides (take a
 * ticket, reserve a slot) is atomic across workers, as it is in one process.
 *
 * Messages carry `gh` (the kind), so they never mix with anything else on
 * the channel.
 */

/** The side of the channel a worker has: `process` in a cluster worker. */
export interface IpcPort {
  send(message: unknown): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

export interface CallMessage { gh: 'call'; id: number; target: string; method: string; args: unknown[] }
export interface NotifyMessage { gh: 'notify'; target: string; method: string; args: unknown[] }
export interface ReplyMessage { gh: 'reply'; id: number; value?: unknown; error?: string }

export class IpcUnavailable extends Error {
  readonly code = 'GH_IPC_UNAVAILABLE';
}

/** A worker's end: calls the primary's objects. */
export class IpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly onMessage = (m: unknown): void => {
    const reply = m as ReplyMessage;
    if (reply?.gh !== 'reply') return;
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.error !== undefined) p.reject(new Error(reply.error));
    else p.resolve(reply.value);
  };

  constructor(private readonly port: IpcPort) {
    port.on('message', this.onMessage);
  }

  call<T>(target: string, method: string, args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      try {
        this.port.send({ gh: 'call', id, target, method, args } satisfies CallMessage);
      } catch (err) {
        this.pending.delete(id);
        reject(new IpcUnavailable(`the primary process cannot be reached: ${(err as Error).message}`));
      }
    });
  }

  /** A call whose answer nobody waits for (a release). */
  notify(target: string, method: string, args: unknown[]): void {
    try {
      this.port.send({ gh: 'notify', target, method, args } satisfies NotifyMessage);
    } catch { /* the primary is gone: so is every count it kept */ }
  }

  close(): void {
    this.port.off('message', this.onMessage);
    for (const p of this.pending.values()) p.reject(new IpcUnavailable('the IPC channel closed'));
    this.pending.clear();
  }
}

/** A served object: its methods by name. */
export type Served = Record<string, (...args: never[]) => unknown>;

/**
 * The primary's end for one worker: runs each call on the served objects and
 * answers it. `targets` is looked up per call, so one table serves every worker.
 */
export function serveCalls(send: (m: ReplyMessage) => void, targets: (name: string) => Served | undefined) {
  return (message: unknown): boolean => {
    const m = message as CallMessage | NotifyMessage;
    if (m?.gh !== 'call' && m?.gh !== 'notify') return false;
    const target = targets(m.target);
    const fn = target?.[m.method];
    const answer = (value?: unknown, error?: string): void => {
      if (m.gh === 'call') send(error === undefined ? { gh: 'reply', id: m.id, value } : { gh: 'reply', id: m.id, error });
    };
    if (typeof fn !== 'function') { answer(undefined, `no method ${m.target}.${m.method}`); return true; }
    try {
      // Called on its object: the served classes' methods use `this`.
      const value = (fn as (...a: unknown[]) => unknown).apply(target, m.args);
      if (value instanceof Promise) value.then((v) => answer(v), (err: Error) => answer(undefined, err.message));
      else answer(value);
    } catch (err) {
      answer(undefined, (err as Error).message);
    }
    return true;
  };
}
