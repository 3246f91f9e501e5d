#!/usr/bin/env node
/**
 * Soak: many connections with churn, WebSocket and HTTP fallback mixed, for a
 * long time; the gateway's memory and file descriptors must stay flat and
 * every message must be accounted for.
 *
 *   npm run build && node bench/soak.mjs [--minutes 30] [--connections 10000]
 *     [--fallback 0.1] [--workers 4] [--interval 10] [--churn 0.1] [--warmup 5]
 *
 * - The gateway runs as its own process (bench/lib/targets.mjs), its echo
 *   service without rate limits. Clients run in `--workers` processes
 *   (bench/soak-worker.mjs), so no process holds more than ~connections/workers
 *   sockets (a process may hold at most 20,000 open files).
 * - Each connection sends one message every `--interval` seconds (jittered)
 *   and checks its echo. Every minute `--churn` of the connections (a tenth)
 *   are closed cleanly and replaced by new ones.
 * - Every 10 s the gateway's RSS and open file descriptors are read from /proc.
 * - Verdict: after `--warmup` minutes (5; for short runs a third of the run),
 *   RSS stays within ±10 % of its value at the end of the warm-up; open file
 *   descriptors at the end are not above the warm-up value by more than the
 *   connections being replaced at that moment (2 × churn, with slack); every
 *   message sent was echoed, or was in flight on a connection the soak itself
 *   closed; no connection ended unless the soak closed it.
 * Prints one JSON summary line at the end (`"pass": true|false`) and exits 1 on FAIL.
 */
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rssKiB } from './lib/proc.mjs';
import { startTarget } from './lib/targets.mjs';

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
const SAMPLE_MS = 10_000;

function openFds(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

const log = (msg) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

const server = await startTarget('gatehouse', {
  config: {
    topLevel: {
      limits: {
        handshake_rate: 1_000_000, handshake_burst: 1_000_000, connections_per_address: 1_000_000,
        connections_total: connections * 2, message_rate: 100_000_000, byte_rate: '64GiB', control_rate: 1_000_000,
      },
      websocket: { idle_timeout: '10m' },
      fallback: { session_timeout: '60s' },
      shutdown: { drain_timeout: '5s' },
    },
  },
});
log(`gateway pid ${server.pid} on ${server.host}:${server.port}; ${connections} connections (${Math.round(fallbackShare * 100)} % fallback) over ${workers} workers, ${minutes} min`);

const children = [];
const totals = new Map();
for (let w = 0; w < workers; w++) {
  const share = Math.floor(connections / workers) + (w < connections % workers ? 1 : 0);
  const child = fork(path.join(HERE, 'soak-worker.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.on('message', (m) => { if (m.type === 'stats') totals.set(w, m.stats); });
  child.send({ type: 'start', port: server.port, path: '/echo', connections: share, fallbackShare, interval, churn, worker: w });
  children.push(child);
}

const samples = [];
const started = Date.now();
const endAt = started + minutes * 60_000;
const sum = (key) => [...totals.values()].reduce((a, s) => a + (s[key] ?? 0), 0);
while (Date.now() < endAt) {
  await new Promise((r) => setTimeout(r, Math.min(SAMPLE_MS, endAt - Date.now())));
  const sample = { t: Math.round((Date.now() - started) / 1000), rssKiB: rssKiB(server.pid), fds: openFds(server.pid), open: sum('open'), sent: sum('sent'), echoed: sum('echoed') };
  samples.push(sample);
  log(`t=${sample.t}s rss=${(sample.rssKiB / 1024).toFixed(1)} MiB fds=${sample.fds} open=${sample.open} sent=${sample.sent} echoed=${sample.echoed} unexpected=${sum('unexpectedCloses')} failedOpens=${sum('failedOpens')}`);
}

// Stop the clients (they close every connection cleanly and report final counts).
const finals = await Promise.all(children.map((child) => new Promise((resolve) => {
  child.on('message', (m) => { if (m.type === 'final') resolve(m.stats); });
  child.send({ type: 'stop' });
})));
for (const child of children) child.disconnect();
const afterClose = { rssKiB: rssKiB(server.pid), fds: openFds(server.pid) };
await server.stop();

const total = (key) => finals.reduce((a, s) => a + s[key], 0);
const warm = samples.filter((s) => s.t >= warmup * 60);
const base = warm[0] ?? samples.at(-1);
const rssMin = Math.min(...warm.map((s) => s.rssKiB));
const rssMax = Math.max(...warm.map((s) => s.rssKiB));
const fdsEnd = samples.at(-1).fds;
const fdSlack = Math.ceil(connections * churn * 2) + 50;
const accounted = total('sent') === total('echoed') + total('inFlightAtClose');
const checks = {
  rssWithin10Percent: rssMin >= base.rssKiB * 0.9 && rssMax <= base.rssKiB * 1.1,
  noFdGrowth: fdsEnd <= base.fds + fdSlack,
  everyMessageAccounted: accounted && total('lost') === 0,
  noUnexpectedCloses: total('unexpectedCloses') === 0,
  allOpened: total('failedOpens') === 0,
};
const summary = {
  pass: Object.values(checks).every(Boolean),
  checks,
  minutes, connections, fallbackShare, workers, interval, churn, warmupMinutes: warmup,
  rss: { atWarmupMiB: +(base.rssKiB / 1024).toFixed(1), minMiB: +(rssMin / 1024).toFixed(1), maxMiB: +(rssMax / 1024).toFixed(1), afterCloseMiB: +(afterClose.rssKiB / 1024).toFixed(1) },
  fds: { atWarmup: base.fds, end: fdsEnd, afterClose: afterClose.fds },
  messages: { sent: total('sent'), echoed: total('echoed'), inFlightAtClose: total('inFlightAtClose'), lost: total('lost') },
  connectionsOpened: total('opened'), replaced: total('replaced'), unexpectedCloses: total('unexpectedCloses'), failedOpens: total('failedOpens'),
  why: finals.reduce((acc, s) => { for (const [k, n] of Object.entries(s.why)) acc[k] = (acc[k] ?? 0) + n; return acc; }, {}),
  samples,
};
process.stdout.write(`${JSON.stringify(summary)}\n`);
log(summary.pass ? 'PASS' : `FAIL: ${Object.entries(checks).filter(([, ok]) => !ok).map(([k]) => k).join(', ')}`);
process.exit(summary.pass ? 0 : 1);
