#!/usr/bin/env node
/**
 * Scaling benchmarks (issue 20, docs/scaling.md):
 *
 *   node bench/scaling.mjs [workers] [handshake] [hop] [--quick] [--out FILE]
 *
 * workers   — echo throughput with `workers: 1` and `workers: 2`: 50 WebSocket
 *             connections, 64-byte binary messages, 32 in flight each (the
 *             echo suite's load generator, bench/loadgen.mjs, with 1 and 2
 *             load generator processes). Messages/s, the gateway's CPU per
 *             message (primary and workers summed) and the load generators'
 *             CPU beside it: on a 2-core machine the load generator takes a
 *             core's share too, so the ratio is the figure to read.
 * handshake — new WebSocket connections per second and gateway CPU per
 *             handshake (connect, 101, close; 32 concurrent loops) with the
 *             shared state in the process, in the workers' primary (IPC),
 *             and on Redis (a private redis-server; its CPU reported too).
 * hop       — the fallback's cross-instance hop: two gateways on Redis; one
 *             message in flight over the fallback (client library, stream
 *             mode) with every request sent to the session's owner, then with
 *             every request sent to the other gateway (each one hops). p50 /
 *             p99 round trips and the difference.
 *
 * Needs `npm run build` (bin/gatehouse.js, dist/, client/dist/). Figures
 * taken on a machine others use are noise: run it on a quiet one.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpuSeconds } from './lib/proc.mjs';
import { freePort, gatehouseConfig, gatehouseNodeFlags, HOST, ROOT } from './lib/targets.mjs';
import { LoadgenPool, killAllLoadgens } from './lib/loadgen-pool.mjs';
import { median } from './lib/stats.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIdx = args.indexOf('--out');
const out = outIdx >= 0 ? args[outIdx + 1] : undefined;
const parts = args.filter((a, i) => !a.startsWith('--') && (outIdx < 0 || i !== outIdx + 1));
const want = (p) => parts.length === 0 || parts.includes(p);
const T = quick ? { warmup: 500, duration: 1500, runs: 1 } : { warmup: 1500, duration: 4000, runs: 3 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = new Set();

/** Every pid of a process tree (a primary and its workers). */
function tree(pid) {
  const pids = [pid];
  for (const task of safeList(`/proc/${pid}/task`)) {
    let children = '';
    try { children = readFileSync(`/proc/${pid}/task/${task}/children`, 'latin1'); } catch { /* gone */ }
    for (const c of children.split(' ').filter(Boolean)) pids.push(...tree(Number(c)));
  }
  return pids;
}
function safeList(dir) { try { return readdirSync(dir); } catch { return []; } }
const treeCpu = (pid) => tree(pid).reduce((s, p) => { try { return s + cpuSeconds(p); } catch { return s; } }, 0);

/** `gatehouse start` with `extra` top-level config; resolves when it listens. */
async function gatehouse(extra = {}, services = {}) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-scale-bench-'));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, gatehouseConfig(port, { services, topLevel: extra }));
  const child = spawn(process.execPath, [...gatehouseNodeFlags(), path.join(ROOT, 'bin', 'gatehouse.js'), 'start', '--config', file],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  started.add(child);
  let err = '';
  await new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => { err += d; if (/listening on/.test(err)) resolve(); });
    child.once('exit', (code) => reject(new Error(`gatehouse exited ${code}: ${err}`)));
  });
  return {
    port, pid: child.pid, host: HOST, path: '/echo', label: 'Gatehouse',
    /** CPU seconds of the primary and its workers, summed. */
    cpu: () => treeCpu(child.pid),
    /** CPU seconds of the first process alone (with workers: the primary, which hands connections out). */
    ownCpu: () => cpuSeconds(child.pid),
    async stop() {
      if (child.exitCode === null) { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); }
      started.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function redisServer() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-scale-redis-'));
  const child = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  started.add(child);
  await new Promise((resolve) => child.stdout.on('data', (d) => { if (/Ready to accept/.test(String(d))) resolve(); }));
  return {
    url: `redis://${HOST}:${port}/0`, pid: child.pid,
    async stop() { child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r)); started.delete(child); rmSync(dir, { recursive: true, force: true }); },
  };
}

// ---- workers: echo throughput with 1 and 2 workers ----------------------------------

async function echoOnce(server, loadgens) {
  const pool = LoadgenPool.spawn(loadgens);
  try {
    await pool.connect(server, 50);
    await pool.all('verify', { size: 64 });
    await pool.all('start', { mode: 'throughput', window: 32, refillAt: 8, size: 64 });
    await sleep(T.warmup);
    const cpu0 = server.cpu();
    await pool.all('mark');
    await sleep(T.duration);
    const m = await pool.all('mark');
    const cpu1 = server.cpu();
    await pool.all('stop');
    await pool.assertClean('echo');
    const messages = m.reduce((s, x) => s + x.interval.messages, 0);
    const seconds = m[0].interval.ms / 1000;
    return {
      rate: m.reduce((s, x) => s + x.interval.rate, 0),
      cpuUs: ((cpu1 - cpu0) * 1e6) / messages,
      serverCores: (cpu1 - cpu0) / seconds,
      loadgenCores: m.reduce((s, x) => s + x.interval.cpuBusy, 0),
    };
  } finally {
    await pool.close();
  }
}

async function workersBench() {
  const rows = [];
  for (const workers of [1, 2]) {
    for (const loadgens of [1, 2]) {
      const runs = [];
      for (let r = 0; r < T.runs; r++) {
        const gw = await gatehouse({ workers });
        try { runs.push(await echoOnce(gw, loadgens)); } finally { await gw.stop(); }
      }
      rows.push({ workers, loadgens, rate: median(runs.map((x) => x.rate)), cpuUs: median(runs.map((x) => x.cpuUs)),
        serverCores: median(runs.map((x) => x.serverCores)), loadgenCores: median(runs.map((x) => x.loadgenCores)) });
    }
  }
  const base = Object.fromEntries(rows.filter((r) => r.workers === 1).map((r) => [r.loadgens, r.rate]));
  console.log('\n### Echo throughput, 50 connections × 64 B, 32 in flight\n');
  console.log('| workers | load generators | messages/s | × workers: 1 | gateway CPU/message | gateway cores busy | load generator cores busy |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.workers} | ${r.loadgens} | ${Math.round(r.rate).toLocaleString('en')} | ${(r.rate / base[r.loadgens]).toFixed(2)} | ${r.cpuUs.toFixed(2)} µs | ${r.serverCores.toFixed(2)} | ${r.loadgenCores.toFixed(2)} |`);
  }
  return rows;
}

// ---- handshake: in-process vs primary (IPC) vs Redis ----------------------------------

const REQUEST = Buffer.from(['GET /echo HTTP/1.1', `Host: ${HOST}`, 'Upgrade: websocket', 'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', '', ''].join('\r\n'), 'latin1');

function handshakeOnce(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, HOST, () => s.write(REQUEST));
    let head = '';
    s.on('data', (d) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.destroy();
      if (head.startsWith('HTTP/1.1 101')) resolve(); else reject(new Error(head.split('\r\n')[0]));
    });
    s.on('error', reject);
  });
}

async function handshakeLoad(server, ms) {
  let done = 0;
  let stop = false;
  const loops = Array.from({ length: 32 }, async () => { while (!stop) { await handshakeOnce(server.port); done++; } });
  await sleep(ms);
  stop = true;
  await Promise.all(loops);
  return done;
}

async function handshakeBench() {
  const rows = [];
  const redis = await redisServer();
  try {
    const variants = [
      ['in the process (workers: 1)', {}, undefined],
      ['in the primary, over IPC (workers: 2)', { workers: 2 }, undefined],
      ['on Redis (workers: 1, cluster)', { cluster: { redis: redis.url, secret: 'x'.repeat(32) } }, redis],
      ['on Redis (workers: 2, cluster)', { workers: 2, cluster: { redis: redis.url, secret: 'x'.repeat(32) } }, redis],
    ];
    for (const [label, extra, r] of variants) {
      const runs = [];
      for (let i = 0; i < T.runs; i++) {
        const gw = await gatehouse(extra);
        try {
          await handshakeLoad(gw, T.warmup);
          const c0 = gw.cpu();
          const p0 = gw.ownCpu();
          const r0 = r ? cpuSeconds(r.pid) : 0;
          const l0 = process.cpuUsage();
          const t0 = performance.now();
          const n = await handshakeLoad(gw, T.duration);
          const seconds = (performance.now() - t0) / 1000;
          const l = process.cpuUsage(l0);
          const per = (sec) => (sec * 1e6) / n;
          runs.push({
            rate: n / seconds,
            cpuUs: per(gw.cpu() - c0),
            primaryUs: extra.workers > 1 ? per(gw.ownCpu() - p0) : 0,
            redisUs: r ? per(cpuSeconds(r.pid) - r0) : 0,
            loadgenUs: (l.user + l.system) / n,
          });
        } finally { await gw.stop(); }
      }
      const med = (k) => median(runs.map((x) => x[k]));
      rows.push({ label, rate: med('rate'), cpuUs: med('cpuUs'), primaryUs: med('primaryUs'), redisUs: med('redisUs'), loadgenUs: med('loadgenUs') });
    }
  } finally { await redis.stop(); }
  console.log('\n### Handshakes: where the limits are counted\n');
  console.log('| shared state | handshakes/s | gateway CPU/handshake | of which the primary | Redis CPU/handshake | load generator CPU/handshake |');
  console.log('|---|---:|---:|---:|---:|---:|');
  const us = (x) => (x ? `${x.toFixed(0)} µs` : '—');
  for (const r of rows) {
    console.log(`| ${r.label} | ${Math.round(r.rate).toLocaleString('en')} | ${us(r.cpuUs)} | ${us(r.primaryUs)} | ${us(r.redisUs)} | ${us(r.loadgenUs)} |`);
  }
  return rows;
}

// ---- hop: the fallback's added latency between gateways ----------------------------

async function hopBench() {
  const { GatehouseSocket } = await import(path.join(ROOT, 'client', 'dist', 'index.js'));
  const redis = await redisServer();
  const cluster = { cluster: { redis: redis.url, secret: 'y'.repeat(32) } };
  const a = await gatehouse(cluster);
  const b = await gatehouse(cluster);
  const rows = [];
  try {
    for (const [label, port] of [['to the owner', a.port], ['through the other gateway (each request hops)', b.port]]) {
      const rts = [];
      for (let r = 0; r < T.runs; r++) {
        // Open at A (the owner); every later request goes to `port`.
        const viaPort = (u, init) => {
          const url = new URL(String(u));
          if (url.searchParams.get('gh') !== 'open') url.port = String(port);
          return fetch(url, init);
        };
        const s = new GatehouseSocket(`ws://${HOST}:${a.port}/echo`, [], { transport: 'fallback', fetch: viaPort, streamDelay: 0 });
        await new Promise((resolve, reject) => { s.onopen = resolve; s.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
        const n = quick ? 300 : 2000;
        const times = [];
        let c0 = 0;
        for (let i = 0; i < n; i++) {
          if (i === n / 10) c0 = a.cpu() + b.cpu();
          const t0 = performance.now();
          await new Promise((resolve) => { s.onmessage = resolve; s.send('x'.repeat(64)); });
          if (i >= n / 10) times.push((performance.now() - t0) * 1000);
        }
        const cpuUs = ((a.cpu() + b.cpu() - c0) * 1e6) / times.length;
        s.close();
        times.sort((x, y) => x - y);
        rts.push({ p50: times[Math.floor(times.length / 2)], p99: times[Math.floor(times.length * 0.99)], cpuUs });
      }
      rows.push({ label, p50: median(rts.map((x) => x.p50)), p99: median(rts.map((x) => x.p99)), cpuUs: median(rts.map((x) => x.cpuUs)) });
    }
  } finally {
    await a.stop();
    await b.stop();
    await redis.stop();
  }
  console.log('\n### The fallback\'s cross-instance hop: one message in flight, 64 B, stream mode\n');
  console.log('| requests go | round trip p50 | p99 | gateways\' CPU per round trip |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.label} | ${r.p50.toFixed(0)} µs | ${r.p99.toFixed(0)} µs | ${r.cpuUs.toFixed(0)} µs |`);
  console.log(`\nAdded by the hop (p50): ${(rows[1].p50 - rows[0].p50).toFixed(0)} µs per round trip (a send and the stream's answer both hop).`);
  return rows;
}

const results = { machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, load: os.loadavg() } };
process.on('SIGINT', () => { for (const c of started) c.kill('SIGKILL'); killAllLoadgens(); process.exit(130); });
try {
  console.log(`Machine: ${results.machine.cpus} × ${results.machine.model}, Node ${results.machine.node}, load average ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}${quick ? ' (--quick: one short run each)' : ''}`);
  if (want('workers')) results.workers = await workersBench();
  if (want('handshake')) results.handshake = await handshakeBench();
  if (want('hop')) results.hop = await hopBench();
  if (out) writeFileSync(out, JSON.stringify(results, null, 2));
} finally {
  for (const c of started) c.kill('SIGKILL');
  killAllLoadgens();
}
