/**
 * The primary process of `workers: N`: forks the workers (node:cluster; they
 * share the listening ports, each runs the whole gateway), keeps the state
 * they share (ipc-state.ts), and carries the signals:
 *
 *  - SIGHUP: the configuration file is read and checked once here; when it is
 *    valid every worker reloads it (open connections keep what they were
 *    admitted with), otherwise the running one stays and one error is logged.
 *  - SIGTERM / SIGINT: every worker drains at once, all within the one
 *    `shutdown.drain_timeout`; a worker still running a moment after it is killed.
 *  - a worker that dies is forked again in its slot (at once; after repeated
 *    quick deaths with a growing pause, at most 10 s); its clients lost their
 *    connections with it and reconnect to the others.
 *
 * It knows nothing of the gateway: the caller says how to check a
 * configuration and what to print once everyone listens.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { serveCalls, type ReplyMessage, type Served } from './ipc.js';
import type { BusMessage } from './ipc-bus.js';
import { PrimaryState } from './ipc-state.js';

/** Messages a worker sends its primary (besides calls). */
export type WorkerMessage =
  | { gh: 'ready'; addresses: unknown[]; hop?: { id: string; url: string } }
  | { gh: 'answer'; id: number; value?: unknown; error?: string };

/** Messages the primary sends a worker (besides replies). */
export type PrimaryMessage =
  | { gh: 'reload' }
  | { gh: 'stop'; timeoutMs: number }
  | { gh: 'hops'; table: Record<string, string> }
  /** A question for the worker (its metrics, a publish): answered with `answer` and the same id. */
  | { gh: 'ask'; id: number; what: string; args: unknown[] };

export interface PrimaryOptions {
  workers: number;
  log: Logger;
  drainTimeout: () => number;
  /** Checks the configuration file before the workers reload it; returns the problems (none: reload). */
  check(): string[];
  /** Everyone listens: the addresses of the first worker. */
  listening(addresses: unknown[]): void;
  /** Environment for every worker (its slot is added as GATEHOUSE_WORKER). */
  env?: NodeJS.ProcessEnv;
}

interface Slot {
  index: number;
  worker?: Worker;
  startedAt: number;
  quickDeaths: number;
  hop?: { id: string; url: string };
}

/** A worker that dies within this of its start counts as a quick death. */
const QUICK_DEATH_MS = 5_000;
const MAX_RESTART_DELAY_MS = 10_000;
/** After the drain timeout, how long a worker still has before it is killed. */
const KILL_GRACE_MS = 2_000;

export class Primary {
  readonly shared = new PrimaryState();
  private readonly slots: Slot[] = [];
  private stopping?: Promise<void>;
  private started = false;
  /** The workers' pub/sub hub (without Redis): a message one publishes goes to all, in the order it came. */
  private readonly bus: Served = {
    publish: (channel: string, message: string) => this.publish(channel, message),
  };

  constructor(private readonly opts: PrimaryOptions) {
    // Structured clone on the IPC channel: principals, limits and results cross as they are.
    cluster.setupPrimary({ serialization: 'advanced' });
  }

  /** Forks every worker; resolves once all listen, rejects if one ends before (nothing is left running then). */
  async start(): Promise<void> {
    const ready: Array<Promise<unknown[]>> = [];
    for (let i = 0; i < this.opts.workers; i++) {
      const slot: Slot = { index: i, startedAt: 0, quickDeaths: 0 };
      this.slots.push(slot);
      ready.push(this.fork(slot));
    }
    try {
      const addresses = await Promise.all(ready);
      this.started = true;
      this.opts.listening(addresses[0]);
    } catch (err) {
      await this.stop(0);
      throw err;
    }
  }

  get pids(): number[] {
    return this.slots.flatMap((s) => (s.worker?.process.pid !== undefined ? [s.worker.process.pid] : []));
  }

  /** SIGHUP: check the file once, then every worker reloads it. */
  reload(): void {
    const problems = this.opts.check();
    if (problems.length > 0) {
      this.opts.log.error({ issues: problems }, 'reload refused: the new configuration is invalid; the running configuration stays');
      return;
    }
    for (const s of this.slots) this.send(s.worker, { gh: 'reload' });
    this.opts.log.info({ workers: this.slots.length }, 'configuration reload sent to every worker');
  }

  /** SIGTERM: every worker drains; resolves when all have exited. */
  stop(timeoutMs = this.opts.drainTimeout()): Promise<void> {
    this.stopping ??= (async () => {
      const exits = this.slots.map((s) => this.exited(s.worker));
      for (const s of this.slots) this.send(s.worker, { gh: 'stop', timeoutMs });
      const killer = setTimeout(() => {
        for (const s of this.slots) if (s.worker && !s.worker.isDead()) s.worker.process.kill('SIGKILL');
      }, timeoutMs + KILL_GRACE_MS);
      await Promise.all(exits);
      clearTimeout(killer);
    })();
    return this.stopping;
  }

  private fork(slot: Slot): Promise<unknown[]> {
    const worker = cluster.fork({ ...this.opts.env, GATEHOUSE_WORKER: String(slot.index) });
    slot.worker = worker;
    slot.startedAt = Date.now();
    slot.hop = undefined;
    const state = this.shared.targetsFor(worker.id);
    const calls = serveCalls((m: ReplyMessage) => this.send(worker, m), (name) => (name === 'bus' ? this.bus : state(name)));
    return new Promise((resolve, reject) => {
      let listening = false;
      worker.on('message', (m: WorkerMessage) => {
        if (calls(m)) return;
        if (m?.gh === 'answer') { this.answered(m); return; }
        if (m?.gh === 'ready') {
          listening = true;
          if (m.hop) { slot.hop = m.hop; this.broadcastHops(); }
          resolve(m.addresses);
        }
      });
      worker.once('exit', (code, signal) => {
        const freed = this.shared.workerGone(worker.id);
        if (slot.hop) { slot.hop = undefined; this.broadcastHops(); }
        if (!listening) reject(new Error(`worker ${slot.index} exited (${signal ?? code}) before it was listening`));
        if (this.stopping || !this.started) return;
        this.opts.log.error({ worker: slot.index, pid: worker.process.pid, code, signal, slotsFreed: freed }, 'worker died: starting another');
        this.restart(slot);
      });
    });
  }

  private restart(slot: Slot): void {
    slot.quickDeaths = Date.now() - slot.startedAt < QUICK_DEATH_MS ? slot.quickDeaths + 1 : 0;
    const delay = slot.quickDeaths === 0 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** slot.quickDeaths);
    setTimeout(() => {
      if (this.stopping) return;
      this.fork(slot).then(
        () => this.opts.log.info({ worker: slot.index, pid: slot.worker?.process.pid }, 'worker restarted'),
        (err: Error) => this.opts.log.error({ worker: slot.index, err: err.message }, 'restarted worker failed to start'),
      );
    }, delay).unref();
  }

  /**
   * Asks every running worker `what` (the admin listener's metrics, for
   * example); resolves with each answer by slot, undefined for a worker that
   * did not answer within 5 s.
   */
  askAll(what: string, args: unknown[] = []): Promise<Array<{ worker: number; value: unknown }>> {
    return Promise.all(this.slots.map(async (s) => ({ worker: s.index, value: await this.ask(s.worker, what, args) })));
  }

  /** Asks one running worker (the first that is up). */
  askOne(what: string, args: unknown[] = []): Promise<unknown> {
    const s = this.slots.find((x) => x.worker && !x.worker.isDead() && x.worker.isConnected());
    return this.ask(s?.worker, what, args);
  }

  private nextAsk = 1;
  private readonly asks = new Map<number, (value: unknown) => void>();

  private ask(worker: Worker | undefined, what: string, args: unknown[]): Promise<unknown> {
    if (!worker || worker.isDead() || !worker.isConnected()) return Promise.resolve(undefined);
    const id = this.nextAsk++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.asks.delete(id); resolve(undefined); }, 5_000);
      this.asks.set(id, (v) => { clearTimeout(timer); resolve(v); });
      this.send(worker, { gh: 'ask', id, what, args });
    });
  }

  private answered(m: { id: number; value?: unknown }): void {
    const done = this.asks.get(m.id);
    this.asks.delete(m.id);
    done?.(m.value);
  }

  /** A pub/sub message to every worker (a worker's, or the admin API's). */
  publish(channel: string, message: string): void {
    const m: BusMessage = { gh: 'bus', channel, message };
    for (const s of this.slots) this.send(s.worker, m);
  }

  /** Every worker learns where the others take fallback hops. */
  private broadcastHops(): void {
    const table: Record<string, string> = {};
    for (const s of this.slots) if (s.hop) table[s.hop.id] = s.hop.url;
    for (const s of this.slots) this.send(s.worker, { gh: 'hops', table });
  }

  private send(worker: Worker | undefined, m: PrimaryMessage | ReplyMessage | BusMessage): void {
    if (!worker || worker.isDead() || !worker.isConnected()) return;
    try { worker.send(m); } catch { /* it is exiting: its exit handler cleans up */ }
  }

  private exited(worker: Worker | undefined): Promise<void> {
    if (!worker || worker.isDead()) return Promise.resolve();
    return new Promise((resolve) => worker.once('exit', () => resolve()));
  }
}
