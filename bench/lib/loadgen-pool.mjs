/**
 * Starting and steering load generator processes (bench/loadgen.mjs) over IPC.
 * Each process is one Node process on its own event loop; requests are
 * `{ cmd, ... }` and resolve with the process's reply.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './targets.mjs';

const LOADGEN = path.join(ROOT, 'bench', 'loadgen.mjs');
const live = new Set();

export function killAllLoadgens() {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

class Loadgen {
  constructor(child) {
    this.child = child;
    this.nextId = 1;
    this.pending = new Map();
    this.exited = false;
    child.on('message', (msg) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg);
      else p.reject(new Error(`loadgen ${msg.id}: ${msg.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      live.delete(child);
      for (const p of this.pending.values()) p.reject(new Error(`loadgen exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  request(cmd, args = {}) {
    if (this.exited) return Promise.reject(new Error('loadgen has exited'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, cmd, ...args });
    });
  }

  async kill() {
    if (this.exited) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await done;
  }
}

export class LoadgenPool {
  /** Fork `n` load generator processes. */
  static spawn(n, { nodeArgs = [] } = {}) {
    const gens = [];
    for (let i = 0; i < n; i++) {
      const child = fork(LOADGEN, [], { cwd: ROOT, execArgv: nodeArgs, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      live.add(child);
      gens.push(new Loadgen(child));
    }
    return new LoadgenPool(gens);
  }

  constructor(gens) {
    this.gens = gens;
  }

  get size() {
    return this.gens.length;
  }

  /** Send the same request to every process; resolves with their replies in order. */
  all(cmd, args = {}) {
    return Promise.all(this.gens.map((g) => g.request(cmd, args)));
  }

  /** Send a per-process request: `argsFor(i)` gives the arguments of process i. */
  each(cmd, argsFor) {
    return Promise.all(this.gens.map((g, i) => g.request(cmd, argsFor(i))));
  }

  /**
   * Open `total` connections to `server`, spread evenly over the processes.
   * Throws if any connection failed.
   */
  async connect(server, total, { concurrency = 100, headers } = {}) {
    const n = this.gens.length;
    const replies = await this.each('connect', (i) => ({
      host: server.host,
      port: server.port,
      path: server.path,
      count: Math.floor(total / n) + (i < total % n ? 1 : 0),
      concurrency,
      headers,
    }));
    const failed = replies.reduce((s, r) => s + r.failed, 0);
    if (failed > 0) {
      const why = replies.flatMap((r) => r.errors).slice(0, 5).join('; ');
      throw new Error(`${failed} of ${total} connections to ${server.label} failed: ${why}`);
    }
    return replies;
  }

  /**
   * One measured interval of the load already started: after `warmup` ms,
   * every process's mark `duration` ms apart, the server's CPU seconds
   * around them; then the load stops. `sleep` is the suite context's.
   */
  async measureInterval(server, sleep, warmup, duration) {
    await sleep(warmup);
    const cpu0 = server.cpuSeconds();
    // Not every server is ours to read (nginx): NaN then.
    const faults0 = server.minorFaults?.() ?? NaN;
    await this.all('mark');
    await sleep(duration);
    const marks = await this.all('mark');
    const cpu = server.cpuSeconds() - cpu0;
    const faults = (server.minorFaults?.() ?? NaN) - faults0;
    await this.all('stop');
    return { marks, cpu, faults, messages: marks.reduce((s, m) => s + m.interval.messages, 0) };
  }

  /** Throw if any process has recorded an error (bad echo, unexpected close, ...). */
  async assertClean(what) {
    const replies = await this.all('status');
    const errors = replies.reduce((s, r) => s + r.errors, 0);
    if (errors > 0) {
      const why = replies.flatMap((r) => r.errorMessages).slice(0, 5).join('; ');
      throw new Error(`${what}: load generator saw ${errors} errors: ${why}`);
    }
    return replies;
  }

  async close({ graceful = true } = {}) {
    if (graceful) {
      try {
        await this.all('close', { timeoutMs: 5000 });
      } catch {
        // fall through to kill
      }
    }
    await Promise.all(this.gens.map((g) => g.kill()));
  }
}
