#!/usr/bin/env node
/**
 * The server's CPU per message on a closed loop of one connection (K
 * messages in flight, binary, one size), over a fixed number of messages,
 * split the way a busy machine needs it told apart:
 *
 *   - the event-loop thread and the other threads (V8's GC and compiler
 *     workers), from /proc/<pid>/task/<tid>/schedstat;
 *   - the loop thread's user and system time;
 *   - minor page faults per message. A run whose server faults in fresh
 *     pages for its socket reads (glibc's heap trimmed and grown again
 *     between collections: bench/RESULTS.md, "Sixth session") pays ~1 ms of
 *     system time per 256 KiB message that a run without faults does not;
 *     such a run is not an A/B figure of the code.
 *
 *   node bench/inflight-cpu.mjs [--target echo|proxy|bare] [--size 262144] [--inflight 1]
 *                               [--warmup 1000] [--messages 2000] [--gatehouse-root DIR] [--strace]
 *
 *   --target echo   Gatehouse's echo service (default)
 *            proxy  Gatehouse's `websocket` service in front of a ws echo backend
 *            bare   the bare Node relay in front of the same backend (the floor)
 *   --strace        count the server's memory syscalls (brk, mmap, munmap, madvise) over the
 *                   counted messages with `strace -c` (it slows the server: read the counts, not the times)
 *
 * Prints one line per run. BENCH_GATEHOUSE_NODE_ARGS adds node flags to the
 * Gatehouse process (e.g. --trace-gc with BENCH_SERVER_STDOUT=1).
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { GATEHOUSE_ECHO_SERVICE, HOST, killAllServers, ROOT, startTarget } from './lib/targets.mjs';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const target = opt('--target', 'echo');
const root = path.resolve(opt('--gatehouse-root', ROOT));
const size = Number(opt('--size', '262144'));
const inflight = Number(opt('--inflight', '1'));
const warmup = Number(opt('--warmup', '1000'));
const messages = Number(opt('--messages', '2000'));
const useStrace = argv.includes('--strace');
if (!['echo', 'proxy', 'bare'].includes(target)) throw new Error(`unknown --target ${target}`);

/** Per thread: ns on a CPU (schedstat); for the loop thread also minor faults, utime and stime (clock ticks). */
function threads(pid) {
  const out = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const runNs = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]);
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      // Fields after the command name: [0] is field 3 (state), minflt field 10, utime 14, stime 15.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { runNs, minflt: Number(f[7]), utime: Number(f[11]), stime: Number(f[12]) });
    } catch {
      // The thread ended between readdir and read.
    }
  }
  return out;
}

async function startServers() {
  if (target === 'echo') return { server: await startTarget('gatehouse', { gatehouseRoot: root }), urlPath: '/echo', backend: null };
  const backend = await startTarget('ws');
  if (target === 'bare') return { server: await startTarget('bare', { backendPort: backend.port }), urlPath: '/echo', backend };
  const proxy = { ...GATEHOUSE_ECHO_SERVICE, path: '/proxy', type: 'websocket', backend: `ws://${HOST}:${backend.port}/echo` };
  return { server: await startTarget('gatehouse', { gatehouseRoot: root, config: { services: { proxy } } }), urlPath: '/proxy', backend };
}

/** `n` round trips, `inflight` at a time; resolves with their round-trip times in µs. */
function roundTrips(ws, payload, n) {
  return new Promise((resolve) => {
    let sent = 0;
    let received = 0;
    const sentAt = [];
    const rtt = [];
    const send = () => {
      sentAt.push(process.hrtime.bigint());
      ws.send(payload);
      sent++;
    };
    const onMessage = () => {
      rtt.push(Number(process.hrtime.bigint() - sentAt.shift()) / 1000);
      if (++received === n) {
        ws.off('message', onMessage);
        resolve(rtt);
      } else if (sent < n) send();
    };
    ws.on('message', onMessage);
    while (sent < Math.min(inflight, n)) send();
  });
}

process.on('exit', () => killAllServers());
const { server, urlPath, backend } = await startServers();
const ws = new WebSocket(`ws://${HOST}:${server.port}${urlPath}`, { perMessageDeflate: false });
await new Promise((resolve, reject) => {
  ws.once('open', resolve);
  ws.once('error', reject);
});
const payload = Buffer.alloc(size, 7);
await roundTrips(ws, payload, warmup);

const tracer = useStrace
  ? spawn('strace', ['-f', '-c', '-e', 'trace=brk,mmap,munmap,madvise', '-p', String(server.pid)], { stdio: ['ignore', 'ignore', 'pipe'] })
  : null;
let straceOut = '';
tracer?.stderr.on('data', (d) => { straceOut += d; });
if (tracer) await new Promise((r) => setTimeout(r, 500));

const before = threads(server.pid);
const rtt = await roundTrips(ws, payload, messages);
const after = threads(server.pid);
const load = os.loadavg()[0];
if (tracer) {
  tracer.kill('SIGINT');
  await new Promise((r) => tracer.once('exit', r));
}

const perMessage = (a, b) => (a - b) / messages;
let loopUs = 0;
let otherUs = 0;
for (const [tid, t] of after) {
  const us = perMessage(t.runNs, before.get(tid)?.runNs ?? 0) / 1000;
  if (tid === String(server.pid)) loopUs = us;
  else otherUs += us;
}
const loopNow = after.get(String(server.pid));
const loopThen = before.get(String(server.pid));
const tickUs = 1e6 / 100; // USER_HZ is 100 on Linux
rtt.sort((a, b) => a - b);
const fixed = (v, d = 1) => v.toFixed(d);
console.log(`${server.label} ${target} ${size} B x ${inflight} in flight: CPU/message ${fixed(loopUs + otherUs)} us ` +
  `(loop thread ${fixed(loopUs)}: user ${fixed(perMessage(loopNow.utime, loopThen.utime) * tickUs, 0)}, ` +
  `sys ${fixed(perMessage(loopNow.stime, loopThen.stime) * tickUs, 0)}; other threads ${fixed(otherUs)}), ` +
  `minor faults/message ${fixed(perMessage(loopNow.minflt, loopThen.minflt))}, p50 ${fixed(rtt[rtt.length >> 1], 0)} us, ` +
  `load ${fixed(load, 2)}`);
if (tracer) {
  for (const line of straceOut.split('\n')) {
    if (/\b(brk|mmap|munmap|madvise)\s*$/.test(line)) console.log(`  strace: ${line.trim().split(/\s+/).slice(-2).join(' ')} calls`);
  }
}
ws.close();
await server.stop();
await backend?.stop();
