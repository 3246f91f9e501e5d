#!/usr/bin/env node
/**
 * Instructions per message of a server process, counted by valgrind's
 * callgrind: a measure that does not move with what else the machine runs
 * (wall-clock rates and even CPU times do on a shared host). User-space
 * instructions of every thread of the process (event loop, GC helpers, the
 * JIT's background compiles); the kernel's work (syscalls, loopback TCP) is
 * not in it — count syscalls with `strace -c -f -p PID` for that.
 *
 *   node bench/callgrind.mjs proxy [--target gatehouse|bare] [--size 64] [--conns 1] [options]
 *   node bench/callgrind.mjs echo  [--target gatehouse|ws]   [--size 64] [--conns 1] [options]
 *   node bench/callgrind.mjs stomp [--target inspect|pass] [--backend tcp|ws] [--conns 1] [options]
 *
 *   --warmup N           round trips before counting (default 20000: V8 has optimised the path by then)
 *   --messages N         round trips counted (default 5000)
 *   --gatehouse-root DIR measure the (built) Gatehouse of another checkout
 *   --keep               keep the callgrind dump (its path is printed)
 *
 * The workload is the suites' closed loop: each connection keeps one binary
 * message in flight (the next goes when the echo of the last is in), through
 * the proxy to a `ws` echo backend (which runs outside valgrind), or to the
 * server's own echo; for stomp, the `stomp` suite's 1 KiB SEND frames after
 * a CONNECT, through Gatehouse with or without the STOMP inspector to the
 * suite's stand-in broker (which answers each with a MESSAGE of the same
 * size). The server runs under `valgrind --tool=callgrind`
 * (about 50× slower); after the warm-up its counters are zeroed
 * (`callgrind_control -z`), and dumped after the counted round trips
 * (`callgrind_control -d`). Printed: instructions per round trip (one message
 * each way through the proxy; for echo, one message in and its echo out).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { GATEHOUSE_ECHO_SERVICE, HOST, killAllServers, startStompEcho, startTarget } from './lib/targets.mjs';
import { CONNECT as STOMP_CONNECT, SEND as STOMP_SEND, services as stompServices } from './suites/stomp.mjs';

const argv = process.argv.slice(2);
const suite = argv[0];
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
if (suite !== 'proxy' && suite !== 'echo' && suite !== 'stomp') {
  process.stderr.write('usage: node bench/callgrind.mjs proxy|echo|stomp [--target T] [--backend tcp|ws] [--size B] [--conns N] [--warmup N] [--messages N] [--gatehouse-root DIR] [--keep]\n');
  process.exit(2);
}
const target = opt('--target', suite === 'stomp' ? 'inspect' : 'gatehouse');
const size = suite === 'stomp' ? STOMP_SEND.length : Number(opt('--size', '64'));
const conns = Number(opt('--conns', '1'));
const warmup = Number(opt('--warmup', '20000'));
const messages = Number(opt('--messages', '5000'));
const gatehouseRoot = opt('--gatehouse-root', undefined);
const keep = argv.includes('--keep');
// Node starts ~50× slower under valgrind: minutes on a busy shared machine.
const READY_TIMEOUT_MS = 600_000;

process.on('exit', () => killAllServers());

const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-callgrind-'));
const wrapper = ['valgrind', '--tool=callgrind', `--callgrind-out-file=${path.join(dir, 'cg.out')}`];

let backend;
let server;
let url;
if (suite === 'proxy') {
  backend = await startTarget('ws');
  if (target === 'gatehouse') {
    const config = { services: { proxy: { ...GATEHOUSE_ECHO_SERVICE, path: '/proxy', type: 'websocket', backend: `ws://${HOST}:${backend.port}/echo` } } };
    server = await startTarget('gatehouse', { config, gatehouseRoot, wrapper, readyTimeoutMs: READY_TIMEOUT_MS });
    url = `ws://${HOST}:${server.port}/proxy`;
  } else if (target === 'bare') {
    server = await startTarget('bare', { backendPort: backend.port, wrapper, readyTimeoutMs: READY_TIMEOUT_MS });
    url = `ws://${HOST}:${server.port}/echo`;
  } else throw new Error(`proxy: unknown target ${target} (gatehouse | bare)`);
} else if (suite === 'stomp') {
  const kind = opt('--backend', 'tcp');
  if (kind !== 'tcp' && kind !== 'ws') throw new Error(`stomp: unknown backend ${kind} (tcp | ws)`);
  if (target !== 'inspect' && target !== 'pass') throw new Error(`stomp: unknown target ${target} (inspect | pass)`);
  backend = await startStompEcho(kind);
  server = await startTarget('gatehouse', { config: { services: stompServices({ [kind]: backend }) }, gatehouseRoot, wrapper, readyTimeoutMs: READY_TIMEOUT_MS });
  url = `ws://${HOST}:${server.port}/stomp-${kind}-${target}`;
} else {
  if (target !== 'gatehouse' && target !== 'ws') throw new Error(`echo: unknown target ${target} (gatehouse | ws)`);
  server = await startTarget(target, { gatehouseRoot, wrapper, readyTimeoutMs: READY_TIMEOUT_MS });
  url = `ws://${HOST}:${server.port}/echo`;
}

const sockets = [];
for (let i = 0; i < conns; i++) {
  const ws = new WebSocket(url, suite === 'stomp' ? 'v12.stomp' : undefined);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  if (suite === 'stomp') {
    ws.send(STOMP_CONNECT);
    await new Promise((resolve) => ws.once('message', resolve));
  }
  sockets.push(ws);
}
const payload = suite === 'stomp' ? STOMP_SEND : Buffer.alloc(size);
if (suite !== 'stomp') for (let i = 0; i < size; i++) payload[i] = (i * 131 + 7) & 0xff;

/** `total` round trips over all connections, each keeping one message in flight. */
function roundTrips(total) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    const handlers = sockets.map((ws) => {
      const onMessage = (data) => {
        if (data.length !== size) reject(new Error(`echo of ${data.length} bytes, expected ${size}`));
        if (++done === total) {
          sockets.forEach((s, i) => s.off('message', handlers[i]));
          resolve();
        } else if (sent < total) {
          sent++;
          ws.send(payload);
        }
      };
      ws.on('message', onMessage);
      return onMessage;
    });
    for (const ws of sockets) {
      if (sent < total) {
        sent++;
        ws.send(payload);
      }
    }
  });
}

const t0 = Date.now();
await roundTrips(warmup);
process.stderr.write(`warm-up: ${warmup} round trips in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
execFileSync('callgrind_control', ['-z', String(server.pid)], { stdio: 'ignore' });
const t1 = Date.now();
await roundTrips(messages);
const seconds = (Date.now() - t1) / 1000;
execFileSync('callgrind_control', ['-d', String(server.pid)], { stdio: 'ignore' });

// The dump callgrind_control -d wrote: cg.out.<n> (the final one at exit has no suffix).
const dumps = readdirSync(dir).filter((f) => /^cg\.out\.\d+$/.test(f)).sort();
const dump = path.join(dir, dumps[dumps.length - 1]);
const text = readFileSync(dump, 'utf8');
const totals = /^(?:totals|summary):\s+(\d+)/m.exec(text);
if (!totals) throw new Error(`no totals in ${dump}`);
const ir = Number(totals[1]);
const label = suite === 'proxy' ? `${target} relay` : suite === 'stomp' ? `stomp ${target}, ${opt('--backend', 'tcp')} backend,` : `${target} echo`;
process.stdout.write(`${label}, ${size} B × ${conns} conn, 1 in flight: ${(ir / messages / 1000).toFixed(1)} k instructions per round trip ` +
  `(${ir.toLocaleString('en-US')} over ${messages} round trips, ${seconds.toFixed(1)} s under valgrind)\n`);

for (const ws of sockets) ws.terminate();
await server.stop(60_000);
await backend?.stop();
if (keep) process.stderr.write(`callgrind dump: ${dump}\n`);
else rmSync(dir, { recursive: true, force: true });
process.exit(0);
