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
 *   node bench/callgrind.mjs fallback [--target gatehouse|sockjs] [--size 64] [--conns 50] [options]
 *
 *   --warmup N           round trips before counting (default 20000, fallback 3000: V8 has optimised the path by then)
 *   --messages N         round trips counted (default 5000, fallback 2000)
 *   --gatehouse-root DIR measure the (built) Gatehouse of another checkout
 *   --keep               keep the callgrind dump (its path is printed)
 *
 * The workload is the suites' closed loop: each connection keeps one binary
 * message in flight (the next goes when the echo of the last is in), through
 * the proxy to a `ws` echo backend (which runs outside valgrind), or to the
 * server's own echo; for stomp, the `stomp` suite's 1 KiB SEND frames after
 * a CONNECT, through Gatehouse with or without the STOMP inspector to the
 * suite's stand-in broker (which answers each with a MESSAGE of the same
 * size); for fallback, the `fallback` suite's closed loop: text messages
 * from each system's own client library (Gatehouse's GatehouseSocket in
 * stream mode, sockjs-client's xhr-streaming) to the server's own echo (the
 * suite's SockJS server), counted per message. The server runs under `valgrind --tool=callgrind`
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
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const suite = argv[0];
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
if (suite !== 'proxy' && suite !== 'echo' && suite !== 'stomp' && suite !== 'fallback') {
  process.stderr.write('usage: node bench/callgrind.mjs proxy|echo|stomp|fallback [--target T] [--backend tcp|ws] [--size B] [--conns N] [--warmup N] [--messages N] [--gatehouse-root DIR] [--keep]\n');
  process.exit(2);
}
const fallback = suite === 'fallback';
const target = opt('--target', suite === 'stomp' ? 'inspect' : 'gatehouse');
const size = suite === 'stomp' ? STOMP_SEND.length : Number(opt('--size', '64'));
// (the fallback suite's closed loop has 50 sessions; its messages cost ~100× a WebSocket message's instructions)
const conns = Number(opt('--conns', fallback ? '50' : '1'));
const warmup = Number(opt('--warmup', fallback ? '3000' : '20000'));
const messages = Number(opt('--messages', fallback ? '2000' : '5000'));
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
} else if (fallback) {
  if (target !== 'gatehouse' && target !== 'sockjs') throw new Error(`fallback: unknown target ${target} (gatehouse | sockjs)`);
  server = target === 'gatehouse'
    ? await startTarget('gatehouse', { gatehouseRoot, wrapper, readyTimeoutMs: READY_TIMEOUT_MS })
    : await startSockjs();
} else {
  if (target !== 'gatehouse' && target !== 'ws') throw new Error(`echo: unknown target ${target} (gatehouse | ws)`);
  server = await startTarget(target, { gatehouseRoot, wrapper, readyTimeoutMs: READY_TIMEOUT_MS });
  url = `ws://${HOST}:${server.port}/echo`;
}

/** The fallback suite's SockJS echo server (`--serve sockjs`, which prints its port), under valgrind. */
async function startSockjs() {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'suites', 'fallback.mjs');
  const child = spawn(wrapper[0], [...wrapper.slice(1), process.execPath, script, '--serve', 'sockjs'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error('the SockJS server did not start')), READY_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) { clearTimeout(timer); resolve(JSON.parse(buf.slice(0, nl)).port); }
    });
    child.once('exit', (code) => reject(new Error(`the SockJS server exited with ${code}`)));
  });
  process.on('exit', () => child.kill('SIGKILL'));
  return {
    pid: child.pid,
    port,
    stop: () => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); }),
  };
}

/**
 * The fallback's clients: each system's own library. Under valgrind the server
 * answers ~50× slower: Gatehouse's client must not take that for a buffering
 * intermediary (stream timeout, delay probes) and switch to long-polling.
 */
async function fallbackClients() {
  if (gatehouseRoot) process.env.GATEHOUSE_ROOT = path.resolve(gatehouseRoot);
  const { connect } = await import('./suites/fallback.mjs');
  const clients = [];
  for (let i = 0; i < conns; i++) {
    clients.push(await connect(target, server.port, { streamTimeout: READY_TIMEOUT_MS, streamDelay: 0, retryTimeout: READY_TIMEOUT_MS }));
  }
  const payload = 'x'.repeat(size);
  return clients.map((c) => ({
    send: () => c.send(payload),
    on: (fn) => { c.onmessage = (data) => { if (data.length !== size) throw new Error(`echo of ${data.length} bytes, expected ${size}`); fn(); }; },
    off: () => { c.onmessage = () => undefined; },
    close: () => c.close(),
  }));
}

const sockets = [];
for (let i = 0; i < (fallback ? 0 : conns); i++) {
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

/** The WebSocket clients in the form roundTrips drives (the fallback's clients have it too). */
const peers = fallback ? await fallbackClients() : sockets.map((ws) => ({
  send: () => ws.send(payload),
  on: (fn) => {
    ws.on('message', ws.gatehouseBenchHandler = (data) => {
      if (data.length !== size) throw new Error(`echo of ${data.length} bytes, expected ${size}`);
      fn();
    });
  },
  off: () => ws.off('message', ws.gatehouseBenchHandler),
  close: () => ws.terminate(),
}));

/** `total` round trips over all connections, each keeping one message in flight. */
function roundTrips(total) {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let done = 0;
    for (const peer of peers) {
      peer.on(() => {
        if (++done === total) {
          for (const p of peers) p.off();
          resolve();
        } else if (sent < total) {
          sent++;
          peer.send();
        }
      });
    }
    try {
      for (const peer of peers) {
        if (sent < total) {
          sent++;
          peer.send();
        }
      }
    } catch (err) { reject(err); }
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
const label = fallback ? `${target} fallback (${target === 'sockjs' ? 'xhr-streaming' : 'stream'})` : suite === 'proxy' ? `${target} relay` : suite === 'stomp' ? `stomp ${target}, ${opt('--backend', 'tcp')} backend,` : `${target} echo`;
process.stdout.write(`${label}, ${size} B × ${conns} conn, 1 in flight: ${(ir / messages / 1000).toFixed(1)} k instructions per round trip ` +
  `(${ir.toLocaleString('en-US')} over ${messages} round trips, ${seconds.toFixed(1)} s under valgrind)\n`);

for (const peer of peers) peer.close();
await server.stop(60_000);
await backend?.stop();
if (keep) process.stderr.write(`callgrind dump: ${dump}\n`);
else rmSync(dir, { recursive: true, force: true });
process.exit(0);
