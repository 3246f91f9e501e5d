/**
 * One client process of the soak (bench/soak.mjs): holds its share of the
 * connections — WebSocket (`ws`) and, for `fallbackShare` of them, the HTTP
 * fallback through the client library (`client/dist`) — sends one message per
 * connection every `interval` seconds (jittered), checks every echo, replaces
 * `churn` of its connections every minute, and reports its counts to the
 * parent every 5 s and when told to stop (then it exits).
 *
 * A connection the soak closes (churn, the end of the run) first stops
 * sending and waits up to DRAIN_MS for the echoes of what it sent, so every
 * message has an answer before the close.
 *
 * Accounting: a message is `echoed` when its echo came back, `inFlightAtClose`
 * when its echo had not come DRAIN_MS after the soak stopped sending on its
 * connection, `lost` when its connection ended without the soak closing it;
 * `strayEchoes` are echoes of nothing sent (or twice). `unexpectedCloses`
 * counts the connections that ended without the soak closing them;
 * `failedOpens` connections that never opened. `lagMs` is the longest event-loop
 * delay of this process in the last report period, `lagMaxMs` over the run: a
 * client process that stalls for seconds makes the gateway's sessions look
 * like slow consumers, which says more about the machine than the gateway.
 */
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { GatehouseSocket } = await import(pathToFileURL(path.join(ROOT, 'client', 'dist', 'index.js')).href);

const OPEN_BATCH = 100;
/** How long a connection being closed waits for the echoes of what it sent. */
const DRAIN_MS = 10_000;
const stats = {
  open: 0, opened: 0, replaced: 0, sent: 0, echoed: 0, inFlightAtClose: 0, lost: 0, unexpectedCloses: 0, failedOpens: 0, strayEchoes: 0,
  lagMs: 0, lagMaxMs: 0,
  /** `ws|fallback code reason` of every connection that ended (or failed to open) without the soak closing it: how many. */
  why: {},
};
const live = new Set();
let cfg;
let nextId = 0;
let stopping = false;

class Conn {
  constructor(fallback) {
    this.id = `${cfg.worker}.${nextId++}`;
    this.fallback = fallback;
    this.seq = 0;
    this.pending = new Set();
    this.closingByUs = false;
    this.nextSend = Date.now() + Math.random() * cfg.interval * 1000;
    const url = `ws://127.0.0.1:${cfg.port}${cfg.path}`;
    this.socket = fallback ? new GatehouseSocket(url, [], { transport: 'fallback' }) : new WebSocket(url);
    this.opened = new Promise((resolve) => {
      this.socket.onopen = () => { this.isOpen = true; stats.open++; stats.opened++; resolve(true); };
      this.socket.onerror = () => { /* the close event follows */ };
      this.socket.onclose = (ev) => {
        this.ended = true;
        live.delete(this);
        const why = `${this.fallback ? 'fallback' : 'ws'} ${ev?.code} ${ev?.reason ?? ''}${this.isOpen ? '' : ' (open failed)'}`;
        if (!this.isOpen || !this.closingByUs) stats.why[why] = (stats.why[why] ?? 0) + 1;
        if (!this.isOpen) { stats.failedOpens++; resolve(false); if (!stopping) void openSome(1, this.fallback); return; }
        stats.open--;
        if (this.closingByUs) stats.inFlightAtClose += this.pending.size;
        else { stats.unexpectedCloses++; stats.lost += this.pending.size; if (!stopping) void openSome(1, this.fallback); }
        this.pending.clear();
        this.closedResolve?.();
      };
      this.socket.onmessage = (ev) => {
        const text = typeof ev.data === 'string' ? ev.data : Buffer.from(ev.data).toString();
        if (this.pending.delete(text)) stats.echoed++;
        else stats.strayEchoes++;
        if (this.pending.size === 0) this.drained?.();
      };
    });
    live.add(this);
  }

  send() {
    const text = `${this.id}:${++this.seq}`;
    this.pending.add(text);
    stats.sent++;
    this.socket.send(text);
    this.nextSend = Date.now() + cfg.interval * 1000 * (0.5 + Math.random());
  }

  /** Stops sending, waits (up to DRAIN_MS) for the last echoes, then closes cleanly. */
  async close() {
    if (this.ended) return;
    this.draining = true;
    const closed = new Promise((resolve) => { this.closedResolve = resolve; });
    if (this.pending.size > 0) {
      let timer;
      await Promise.race([
        new Promise((resolve) => { this.drained = resolve; }),
        new Promise((resolve) => { timer = setTimeout(resolve, DRAIN_MS); }),
      ]);
      clearTimeout(timer);
    }
    if (!this.ended) {
      this.closingByUs = true;
      this.socket.close(1000, 'soak churn');
    }
    return closed;
  }
}

async function openSome(n, fallback) {
  for (let done = 0; done < n; done += OPEN_BATCH) {
    const batch = [];
    for (let i = 0; i < Math.min(OPEN_BATCH, n - done); i++) {
      batch.push(new Conn(fallback ?? Math.random() < cfg.fallbackShare).opened);
    }
    await Promise.all(batch);
  }
}

function sendDue() {
  const now = Date.now();
  for (const c of live) if (c.isOpen && !c.draining && c.nextSend <= now) c.send();
}

async function churnSome() {
  const open = [...live].filter((c) => c.isOpen && !c.ended && !c.draining);
  const n = Math.round(open.length * cfg.churn);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (open.length - i));
    [open[i], open[j]] = [open[j], open[i]];
  }
  const victims = open.slice(0, n);
  await Promise.all(victims.map((c) => c.close()));
  // A victim that ended on its own while draining has been replaced by its close handler already.
  const closedByUs = victims.filter((c) => c.closingByUs);
  stats.replaced += closedByUs.length;
  for (const c of closedByUs) if (!stopping) void openSome(1, c.fallback);
}

process.on('message', async (m) => {
  if (m.type === 'start') {
    cfg = m;
    const fallbacks = Math.round(cfg.connections * cfg.fallbackShare);
    await openSome(cfg.connections - fallbacks, false);
    await openSome(fallbacks, true);
    const sender = setInterval(sendDue, 100);
    const churner = setInterval(() => { void churnSome(); }, 60_000);
    const lag = monitorEventLoopDelay({ resolution: 20 });
    lag.enable();
    const reporter = setInterval(() => {
      stats.lagMs = Math.round(lag.max / 1e6);
      stats.lagMaxMs = Math.max(stats.lagMaxMs, stats.lagMs);
      lag.reset();
      process.send({ type: 'stats', stats });
    }, 5_000);
    process.once('message', async (stop) => {
      if (stop.type !== 'stop') return;
      stopping = true;
      clearInterval(sender);
      clearInterval(churner);
      clearInterval(reporter);
      // Connections still opening count as failed opens if they fail; wait for them, then close all cleanly.
      await Promise.all([...live].map((c) => c.opened));
      await Promise.race([Promise.all([...live].map((c) => c.close())), new Promise((r) => setTimeout(r, DRAIN_MS + 15_000))]);
      process.send({ type: 'final', stats }, () => process.exit(0));
    });
  }
});
