#!/usr/bin/env node
/**
 * Soak: many connections with churn, WebSocket and HTTP fallback mixed, for a
 * long time; the gateway's memory and file descriptors must stay flat and
 * every message must be accounted for.
 *
 *   npm run build && node bench/soak.mjs [--minutes 30] [--connections 10000]
 *     [--fallback 0.1] [--workers 3] [--interval 10] [--churn 0.1] [--warmup 5] [--heap-snapshots]
 *
 * - The gateway runs as its own process (bench/lib/targets.mjs), its echo
 *   service without rate limits, its admin listener on a free port so its
 *   own counters can be read. Clients run in `--workers` processes
 *   (bench/soak-worker.mjs), so no process holds more than ~connections/workers
 *   sockets (a process may hold at most 20,000 open files).
 * - Each connection sends one message every `--interval` seconds (jittered)
 *   and checks its echo. Every minute `--churn` of the connections (a tenth)
 *   stop sending, wait for their last echoes, close cleanly and are replaced.
 * - Every 10 s the gateway's RSS and open file descriptors are read from /proc,
 *   its V8 heap (used), external memory and live timers from its /metrics.
 * - `--heap-snapshots`: the gateway writes V8 heap snapshots when idle, at the
 *   warm-up mark, at the end of the run and after every client is gone; the
 *   soak prints what grew between them by object kind (what a leak per
 *   churned connection would show as) and keeps the files. Snapshots force
 *   full GCs and pause the gateway for seconds: the RSS verdict of such a run
 *   is not comparable to one without.
 * - Verdict (see docs/benchmarks.md, "Soak"): memory flat after the warm-up,
 *   file descriptors flat during the run and back to the idle count after it,
 *   every message echoed and counted by the gateway both ways, no connection
 *   ended unless the soak closed it.
 * Prints one JSON summary line at the end (`"pass": true|false`) and exits 1 on FAIL.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, rssKiB } from './lib/proc.mjs';
import { aggregate, difference, snapshotNodeArgs, takeSnapshot } from './lib/heap-snapshot.mjs';
import { freePort, HOST, killAllServers, startTarget } from './lib/targets.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const minutes = opt('minutes', 30);
const connections = opt('connections', 10_000);
const fallbackShare = opt('fallback', 0.1);
const workers = opt('workers', Math.max(2, Math.ceil(connections / 4000)));
const interval = opt('interval', 10);
const churn = opt('churn', 0.1);
const warmup = opt('warmup', Math.min(5, minutes / 3));
const snapshotDir = args.includes('--heap-snapshots') ? mkdtempSync(path.join(os.tmpdir(), 'gatehouse-soak-heap-')) : undefined;
/** Kinds listed per snapshot comparison. */
const SNAPSHOT_TOP = 25;
const SAMPLE_MS = 10_000;
/** File descriptors the gateway may hold above its idle count once every client is gone (timers, a late keep-alive socket). */
const FD_IDLE_SLACK = 10;
/** How long the gateway gets to release everything after the clients exit (the soak's session_timeout, 60 s, and some). */
const SETTLE_MS = 75_000;
/** A client event-loop stall worth a note next to the verdict. */
const CLIENT_LAG_WARN_MS = 1000;

const log = (msg) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const openFds = (pid) => readdirSync(`/proc/${pid}/fd`).length;

/** Ends the run at once, saying why: a client process or the gateway died. */
function abort(why) {
  log(`ABORT: ${why}`);
  process.stdout.write(`${JSON.stringify({ pass: false, aborted: why })}\n`);
  for (const child of children) child.kill('SIGKILL');
  killAllServers();
  process.exit(1);
}

/** The gateway's own counters from /metrics: messages each way, closes by who closed, what is still open. */
async function gatewayCounts(adminPort) {
  const text = await (await fetch(`http://${HOST}:${adminPort}/metrics`)).text();
  const sum = (name, filter = () => true) => text.split('\n')
    .filter((line) => (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) && filter(line))
    .reduce((a, line) => a + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
  return {
    messagesIn: sum('gatehouse_messages_total', (l) => l.includes('direction="in"')),
    messagesOut: sum('gatehouse_messages_total', (l) => l.includes('direction="out"')),
    closedByGateway: sum('gatehouse_closes_total', (l) => l.includes('closed_by="gateway"')),
    closedByTransport: sum('gatehouse_closes_total', (l) => l.includes('closed_by="transport"')),
    connectionsOpen: sum('gatehouse_connections_open'),
    fallbackSessions: sum('gatehouse_fallback_sessions'),
    heapUsedKiB: Math.round(sum('nodejs_heap_size_used_bytes') / 1024),
    heapTotalKiB: Math.round(sum('nodejs_heap_size_total_bytes') / 1024),
    externalKiB: Math.round(sum('nodejs_external_memory_bytes') / 1024),
    timers: sum('nodejs_active_resources', (l) => l.includes('type="Timeout"')),
  };
}

const snapshots = {};
/** `--heap-snapshots`: has the gateway write one, named `label`, and sums it by object kind. */
async function snapshot(label) {
  if (snapshotDir === undefined) return;
  const file = await takeSnapshot(server.pid, snapshotDir);
  snapshots[label] = { file, ...aggregate(file) };
  log(`heap snapshot "${label}": ${(snapshots[label].totalSize / 1048576).toFixed(1)} MiB live, ${file}`);
}

/** Prints what grew (and shrank) by object kind between two snapshots. */
function printGrowth(from, to) {
  const a = snapshots[from];
  const b = snapshots[to];
  if (a === undefined || b === undefined) return;
  log(`heap from "${from}" to "${to}": ${((b.totalSize - a.totalSize) / 1024).toFixed(0)} KiB live\n` +
    '     KiB    objects  kind\n' +
    difference(a, b).slice(0, SNAPSHOT_TOP)
      .map((r) => `${(r.size / 1024).toFixed(1).padStart(8)} ${String(r.count).padStart(10)}  ${r.key}`).join('\n'));
}

const adminPort = await freePort();
const server = await startTarget('gatehouse', {
  nodeArgs: snapshotDir === undefined ? [] : snapshotNodeArgs(snapshotDir),
  config: {
    topLevel: {
      limits: {
        handshake_rate: 1_000_000, handshake_burst: 1_000_000, connections_per_address: 1_000_000,
        connections_total: connections * 2, message_rate: 100_000_000, byte_rate: '64GiB', control_rate: 1_000_000,
      },
      websocket: { idle_timeout: '10m' },
      fallback: { session_timeout: '60s' },
      shutdown: { drain_timeout: '5s' },
      admin: { host: HOST, port: adminPort, dashboard: false },
    },
  },
});
const idle = { rssKiB: rssKiB(server.pid), fds: openFds(server.pid) };
log(`gateway pid ${server.pid} on ${server.host}:${server.port} (idle: ${idle.fds} fds, ${(idle.rssKiB / 1024).toFixed(1)} MiB); ` +
  `${connections} connections (${Math.round(fallbackShare * 100)} % fallback) over ${workers} workers, ${minutes} min`);
await snapshot('idle');

const children = [];
let stopping = false;
const totals = new Map();
const finals = new Map();
for (let w = 0; w < workers; w++) {
  const share = Math.floor(connections / workers) + (w < connections % workers ? 1 : 0);
  const child = fork(path.join(HERE, 'soak-worker.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.on('message', (m) => {
    if (m.type === 'stats') totals.set(w, m.stats);
    if (m.type === 'final') finals.set(w, m.stats);
  });
  child.once('exit', (code, signal) => { if (!stopping) abort(`client process ${w} exited (${code ?? signal}) before the end`); });
  child.send({ type: 'start', port: server.port, path: '/echo', connections: share, fallbackShare, interval, churn, worker: w });
  children.push(child);
}

/** Samples the gateway every SAMPLE_MS until the end of the run. */
async function sampleUntil(endAt, started) {
  const samples = [];
  const sum = (key) => [...totals.values()].reduce((a, s) => a + (s[key] ?? 0), 0);
  const max = (key) => Math.max(0, ...[...totals.values()].map((s) => s[key] ?? 0));
  let cpu = { at: Date.now(), seconds: cpuSeconds(server.pid) };
  while (Date.now() < endAt) {
    await sleep(Math.min(SAMPLE_MS, endAt - Date.now()));
    let sample;
    try {
      const now = { at: Date.now(), seconds: cpuSeconds(server.pid) };
      sample = {
        t: Math.round((now.at - started) / 1000), rssKiB: rssKiB(server.pid), fds: openFds(server.pid),
        cpuPercent: Math.round((100 * (now.seconds - cpu.seconds) * 1000) / (now.at - cpu.at)), load: +os.loadavg()[0].toFixed(1),
        open: sum('open'), sent: sum('sent'), echoed: sum('echoed'), clientLagMs: max('lagMs'),
      };
      cpu = now;
      const gw = await gatewayCounts(adminPort);
      Object.assign(sample, { heapUsedKiB: gw.heapUsedKiB, heapTotalKiB: gw.heapTotalKiB, externalKiB: gw.externalKiB, timers: gw.timers });
    } catch (err) {
      abort(`the gateway (pid ${server.pid}) is gone: ${err.message}\n${server.stderr()}`);
    }
    samples.push(sample);
    if (sample.t >= warmup * 60 && snapshots.warmup === undefined) await snapshot('warmup');
    log(`t=${sample.t}s rss=${(sample.rssKiB / 1024).toFixed(1)} MiB heap=${(sample.heapUsedKiB / 1024).toFixed(1)}/${(sample.heapTotalKiB / 1024).toFixed(1)} MiB ` +
      `external=${(sample.externalKiB / 1024).toFixed(1)} MiB timers=${sample.timers} fds=${sample.fds} cpu=${sample.cpuPercent}% load=${sample.load} ` +
      `open=${sample.open} sent=${sample.sent} echoed=${sample.echoed} unexpected=${sum('unexpectedCloses')} failedOpens=${sum('failedOpens')} clientLag=${sample.clientLagMs}ms`);
  }
  return samples;
}

/** Tells every client process to stop (last echoes, clean closes), waits for their final counts and their exit. */
async function stopClients() {
  const exited = children.map((child) => new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', resolve);
  }));
  stopping = true;
  for (const child of children) child.send({ type: 'stop' });
  const timer = setTimeout(() => abort('a client process did not stop within 60 s'), 60_000);
  await Promise.all(exited);
  clearTimeout(timer);
  if (finals.size !== children.length) abort(`${children.length - finals.size} client process(es) exited without final counts`);
}

/**
 * Waits (up to SETTLE_MS) until the gateway holds no more file descriptors
 * than idle plus a little slack and no connection or fallback session is
 * open (one whose client vanished ends at fallback.session_timeout).
 */
async function settle() {
  const until = Date.now() + SETTLE_MS;
  for (;;) {
    const fds = openFds(server.pid);
    const gw = await gatewayCounts(adminPort);
    const settled = fds <= idle.fds + FD_IDLE_SLACK && gw.connectionsOpen === 0 && gw.fallbackSessions === 0;
    if (settled || Date.now() >= until) return { fds, rssKiB: rssKiB(server.pid), gateway: gw };
    await sleep(1000);
  }
}

const started = Date.now();
const samples = await sampleUntil(started + minutes * 60_000, started);
await snapshot('end');
await stopClients();
const afterClose = await settle();
await snapshot('after close');
printGrowth('warmup', 'end');
printGrowth('idle', 'after close');
const gateway = afterClose.gateway;
await server.stop();

const all = [...finals.values()];
const total = (key) => all.reduce((a, s) => a + s[key], 0);
const summary = verdict(samples, afterClose, gateway, total);
summary.why = all.reduce((acc, s) => { for (const [k, n] of Object.entries(s.why)) acc[k] = (acc[k] ?? 0) + n; return acc; }, {});
summary.clientLagMaxMs = Math.max(0, ...all.map((s) => s.lagMaxMs));
summary.loadMax = Math.max(...samples.map((s) => s.load));
summary.samples = samples;
if (snapshotDir !== undefined) summary.heapSnapshots = Object.fromEntries(Object.entries(snapshots).map(([k, v]) => [k, v.file]));
process.stdout.write(`${JSON.stringify(summary)}\n`);
log('memory after the warm-up, medians by minute (MiB):\n   from s      RSS  heap used  heap total  RSS - heap total  external\n' +
  summary.memoryByMinute.map((m) => [m.fromS, m.rssMiB, m.heapUsedMiB, m.heapTotalMiB, m.nativeMiB, m.externalMiB]
    .map((v, i) => String(v).padStart([8, 9, 11, 12, 18, 10][i])).join('')).join('\n'));
log(summary.pass ? 'PASS' : `FAIL: ${Object.entries(summary.checks).filter(([, ok]) => !ok).map(([k]) => k).join(', ')}`);
if (summary.clientLagMaxMs >= CLIENT_LAG_WARN_MS) {
  log(`note: a client process stalled for ${summary.clientLagMaxMs} ms (load average up to ${summary.loadMax}); ` +
    'fallback sessions whose client stalls past limits.send_stall_timeout (10 s) are closed as slow consumers: run it on a quiet machine');
}
process.exit(summary.pass ? 0 : 1);

/**
 * The checks. File descriptors during the run: the lowest count of the last
 * minute against the lowest of the first minute after the warm-up (a minute's
 * minimum misses the moments when a worker is replacing its share), within 1 %
 * of the connections; after the run, back to the idle count.
 */
function verdict(samples, after, gw, total) {
  const warm = samples.filter((s) => s.t >= warmup * 60);
  const base = warm[0] ?? samples.at(-1);
  const rssMin = Math.min(...warm.map((s) => s.rssKiB));
  const rssMax = Math.max(...warm.map((s) => s.rssKiB));
  const minutesAfter = memoryByMinute(warm.length > 0 ? warm : [base], base.t);
  const rssBase = minutesAfter[0].rssKiB;
  const minFds = (from, to) => Math.min(...warm.filter((s) => s.t >= from && s.t < to).map((s) => s.fds));
  const lastT = samples.at(-1).t;
  const fdsFirstMinute = minFds(base.t, base.t + 60);
  const fdsLastMinute = minFds(Math.max(base.t, lastT - 59), lastT + 1);
  const sent = total('sent');
  const checks = {
    rssWithin10Percent: minutesAfter.every((m) => m.rssKiB >= rssBase * 0.9 && m.rssKiB <= rssBase * 1.1),
    noFdGrowth: fdsLastMinute <= fdsFirstMinute + Math.ceil(connections * 0.01),
    fdsBackToIdle: after.fds <= idle.fds + FD_IDLE_SLACK,
    everyMessageEchoed: total('echoed') === sent && total('inFlightAtClose') === 0 && total('lost') === 0 && total('strayEchoes') === 0,
    gatewayCountedEveryMessage: gw.messagesIn === sent && gw.messagesOut === total('echoed'),
    noUnexpectedCloses: total('unexpectedCloses') === 0 && gw.closedByGateway === 0 && gw.closedByTransport === 0,
    allOpened: total('failedOpens') === 0,
    nothingLeftOpen: gw.connectionsOpen === 0 && gw.fallbackSessions === 0,
  };
  return {
    pass: Object.values(checks).every(Boolean),
    checks,
    minutes, connections, fallbackShare, workers, interval, churn, warmupMinutes: warmup,
    rss: {
      idleMiB: mib(idle.rssKiB), atWarmupMiB: mib(rssBase), endMiB: mib(minutesAfter.at(-1).rssKiB),
      minMiB: mib(rssMin), maxMiB: mib(rssMax), afterCloseMiB: mib(after.rssKiB),
    },
    memoryByMinute: minutesAfter.map((m) => Object.fromEntries(Object.entries(m).map(([k, v]) => [k.replace(/KiB$/, 'MiB'), k === 'fromS' ? v : mib(v)]))),
    memoryAfterClose: { rssMiB: mib(after.rssKiB), heapUsedMiB: mib(gw.heapUsedKiB), heapTotalMiB: mib(gw.heapTotalKiB), externalMiB: mib(gw.externalKiB) },
    fds: { idle: idle.fds, atWarmup: base.fds, firstMinuteMin: fdsFirstMinute, lastMinuteMin: fdsLastMinute, afterClose: after.fds },
    messages: { sent, echoed: total('echoed'), inFlightAtClose: total('inFlightAtClose'), lost: total('lost'), strayEchoes: total('strayEchoes') },
    gateway: gw,
    connectionsOpened: total('opened'), replaced: total('replaced'), unexpectedCloses: total('unexpectedCloses'), failedOpens: total('failedOpens'),
  };
}

/**
 * The memory samples from `from` (s) on, as one row per minute: the median of
 * each figure over that minute. The RSS check compares these, not single
 * samples: a 10 s sample can land in the trough after V8 has compacted and
 * given pages back, and be several MiB below the minute around it. `nativeKiB`
 * is RSS less V8's heap: what the heap does not explain (the binary and its
 * libraries, malloc: buffers, libuv, OpenSSL).
 */
function memoryByMinute(samples, from) {
  const minutes = [];
  for (const s of samples) {
    const i = Math.floor((s.t - from) / 60);
    (minutes[i] ??= []).push(s);
  }
  const median = (xs) => { const v = xs.slice().sort((a, b) => a - b); return v[(v.length - 1) >> 1]; };
  return minutes.filter(Boolean).map((group) => ({
    fromS: group[0].t,
    rssKiB: median(group.map((s) => s.rssKiB)),
    heapUsedKiB: median(group.map((s) => s.heapUsedKiB)),
    heapTotalKiB: median(group.map((s) => s.heapTotalKiB)),
    nativeKiB: median(group.map((s) => s.rssKiB - s.heapTotalKiB)),
    externalKiB: median(group.map((s) => s.externalKiB)),
  }));
}

function mib(kib) {
  return +(kib / 1024).toFixed(1);
}
