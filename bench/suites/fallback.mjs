#!/usr/bin/env node
/**
 * Suite `fallback`: Gatehouse's HTTP fallback against Socket.IO's long-polling
 * and SockJS's xhr-streaming, on the same machine, same message sizes. Each
 * system is driven by its own client library under Node: Gatehouse's
 * (`client/`, `transport: 'fallback'`, streaming), socket.io-client
 * (`transports: ['polling']`), sockjs-client (`xhr-streaming`).
 *
 * For each system, in fresh processes (server and load generator separate, so
 * each has a core of its own on a 2-core machine), three phases against the
 * same server process, each after a warm-up second:
 *   - pipelined: `clients` sessions echo 64-byte text messages with up to
 *     `window` messages outstanding each (10 × 50);
 *   - closed loop, 1 in flight: `loopClients` sessions (50) each send their
 *     next message when the echo of the last one is in, as a chat message or
 *     a game move does;
 *   - one session, one message at a time: median and p99 round trip.
 * The first two report messages/s and CPU per message of both processes:
 * the server's (utime + stime from /proc) and the client library's (the load
 * process's own, `process.cpuUsage`), over the same interval.
 * Targets: issue 6 — pipelined messages/s ≥ 2× Socket.IO polling and ≥ 1×
 * SockJS streaming; issue 18 — 1 in flight, server CPU per message ≤ SockJS's
 * and client CPU per message ≤ socket.io-client's.
 *
 * In the bench runner (bench/run.mjs) this file is a suite (`name`, `run(ctx)`;
 * the "ws" column holds the competitor; `--gatehouse-root DIR` measures the
 * server and client library built in another checkout). Standalone:
 *   node bench/suites/fallback.mjs [--quick] [--runs N] [--seconds S]
 * The same file is the server (`--serve <system>`) and load (`--load <system>`) child;
 * GATEHOUSE_ROOT tells the children which checkout's Gatehouse to use.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { markdownTable } from '../lib/report.mjs';
import { GATEHOUSE_ECHO_SERVICE, GATEHOUSE_TOP_LEVEL, gatehouseNodeFlags } from '../lib/targets.mjs';

const HERE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(HERE), '..', '..');
/** The checkout whose Gatehouse (server and client library) is measured. */
const GH_ROOT = path.resolve(process.env.GATEHOUSE_ROOT || ROOT);

export const name = 'fallback';
export const description = 'HTTP fallback: Gatehouse vs Socket.IO long-polling and SockJS xhr-streaming, each with its own client (pipelined and 1 in flight; messages/s, CPU/message server and client, round trip)';

const SYSTEMS = ['gatehouse', 'socketio', 'sockjs'];
const LABEL = { gatehouse: 'Gatehouse fallback (streaming)', socketio: 'Socket.IO long-polling', sockjs: 'SockJS xhr-streaming' };
const CLIENT = { socketio: 'socket.io-client', sockjs: 'sockjs-client' };
const TARGET = { socketio: 2, sockjs: 1 };

// ---------------------------------------------------------------- servers --

async function serve(system) {
  let port;
  if (system === 'gatehouse') {
    const dist = path.join(GH_ROOT, 'dist', 'gateway.js');
    const { Gateway } = await import(existsSync(dist) ? pathToFileURL(dist).href : pathToFileURL(path.join(GH_ROOT, 'src', 'gateway.ts')).href);
    const loadMod = existsSync(dist) ? path.join(GH_ROOT, 'dist', 'config', 'load.js') : path.join(GH_ROOT, 'src', 'config', 'load.ts');
    const { parseConfig } = await import(pathToFileURL(loadMod).href);
    const { createLogger } = await import(pathToFileURL(loadMod.replace(/config[/\\]load\.(js|ts)$/, 'observe/log.$1')).href);
    const config = parseConfig({
      listen: [{ host: '127.0.0.1', port: 0 }],
      // The same bench settings as every other suite: no Origin from the load
      // process, rate and connection limits out of the way.
      services: { echo: { path: '/echo', type: 'echo', ...GATEHOUSE_ECHO_SERVICE } },
      limits: GATEHOUSE_TOP_LEVEL.limits,
      log: { level: 'warn' },
    }, {});
    const gw = await Gateway.start(config, { logger: createLogger('warn') });
    port = gw.addresses[0].port;
  } else if (system === 'socketio') {
    const { Server } = await import('socket.io');
    const http = createServer();
    const io = new Server(http, { transports: ['polling'], cors: { origin: true } });
    io.on('connection', (socket) => socket.on('m', (d) => socket.emit('m', d)));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    port = http.address().port;
  } else if (system === 'sockjs') {
    const sockjs = (await import('sockjs')).default;
    const echo = sockjs.createServer({ log: () => undefined, disconnect_delay: 5000 });
    echo.on('connection', (conn) => conn.on('data', (d) => conn.write(d)));
    const http = createServer();
    echo.installHandlers(http, { prefix: '/echo' });
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    port = http.address().port;
  } else throw new Error(`unknown system ${system}`);
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

// ---------------------------------------------------------------- clients --

/**
 * Connect one client; returns { send(text), onmessage setter, close() } once open.
 * `gatehouseOptions`: more options for GatehouseSocket (bench/callgrind.mjs
 * lengthens its timeouts for a server under valgrind).
 */
export async function connect(system, port, gatehouseOptions = {}) {
  if (system === 'gatehouse') {
    const dist = path.join(GH_ROOT, 'client', 'dist', 'index.js');
    const { GatehouseSocket } = await import(existsSync(dist) ? pathToFileURL(dist).href : pathToFileURL(path.join(GH_ROOT, 'client', 'src', 'index.ts')).href);
    const s = new GatehouseSocket(`ws://127.0.0.1:${port}/echo`, [], { transport: 'fallback', ...gatehouseOptions });
    await new Promise((resolve, reject) => { s.onopen = resolve; s.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
    const c = { onmessage: () => undefined };
    s.onmessage = (e) => c.onmessage(e.data);
    c.send = (t) => s.send(t);
    c.close = () => s.close();
    return c;
  }
  if (system === 'socketio') {
    const { io } = await import('socket.io-client');
    const s = io(`http://127.0.0.1:${port}`, { transports: ['polling'], forceNew: true, reconnection: false });
    await once(s, 'connect');
    const c = { onmessage: () => undefined };
    s.on('m', (d) => c.onmessage(d));
    c.send = (t) => s.emit('m', t);
    c.close = () => s.close();
    return c;
  }
  if (system === 'sockjs') {
    const SockJS = (await import('sockjs-client')).default;
    const s = new SockJS(`http://127.0.0.1:${port}/echo`, null, { transports: ['xhr-streaming'] });
    await new Promise((resolve, reject) => { s.onopen = resolve; s.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
    const c = { onmessage: () => undefined };
    s.onmessage = (e) => c.onmessage(e.data);
    c.send = (t) => s.send(t);
    c.close = () => s.close();
    return c;
  }
  throw new Error(`unknown system ${system}`);
}

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function quantiles(samples) {
  const v = [...samples].sort((a, b) => a - b);
  const q = (p) => (v.length === 0 ? NaN : v[Math.min(v.length - 1, Math.floor(p * v.length))]);
  return { p50: q(0.5), p99: q(0.99) };
}

/**
 * `count` sessions; each keeps `window` messages in flight (1: closed loop,
 * the next message goes when the echo of the last is in). Warm-up, then
 * `seconds` measured: messages/s, CPU per message of the server and of this
 * process (the client library), and, with `window` 1, the round trips.
 */
async function phase(system, port, { count, window, seconds, payload, serverPid }) {
  const conns = await Promise.all(Array.from({ length: count }, () => connect(system, port)));
  let counting = false;
  let messages = 0;
  let stop = false;
  const rtts = [];
  for (const c of conns) {
    let sentAt = 0;
    c.onmessage = () => {
      if (counting) {
        messages++;
        if (window === 1) rtts.push((performance.now() - sentAt) * 1000);
      }
      if (stop) return;
      sentAt = performance.now();
      c.send(payload);
    };
    sentAt = performance.now();
    for (let i = 0; i < window; i++) c.send(payload);
  }
  await sleep(1000); // warm-up
  counting = true;
  const t0 = performance.now();
  const server0 = serverPid ? cpuOf(serverPid) : 0;
  const load0 = process.cpuUsage();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const loadCpu = process.cpuUsage(load0);
  const serverCpu = serverPid ? cpuOf(serverPid) - server0 : NaN;
  counting = false;
  stop = true;
  for (const c of conns) c.close();
  await sleep(300); // let the closes go out before the next phase
  return {
    rate: messages / elapsed,
    // CPU per message, server and client side: what the rate would be with a core each and nothing else running.
    serverUs: (serverCpu * 1e6) / messages,
    clientUs: (loadCpu.user + loadCpu.system) / messages,
    ...(window === 1 ? quantiles(rtts) : {}),
  };
}

async function load(system, port, { clients, window, loopClients, seconds, size, serverPid }) {
  const payload = 'x'.repeat(size);
  const pipelined = await phase(system, port, { count: clients, window, seconds, payload, serverPid });
  const loop = await phase(system, port, { count: loopClients, window: 1, seconds, payload, serverPid });

  // Latency: one session, one message at a time.
  const one = await connect(system, port);
  const rtts = [];
  const n = Math.max(200, seconds * 100);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await new Promise((resolve) => { one.onmessage = resolve; one.send(payload); });
    rtts.push((performance.now() - t) * 1000);
  }
  one.close();
  process.stdout.write(`${JSON.stringify({ pipelined, loop, single: quantiles(rtts) })}\n`);
  await sleep(200);
  process.exit(0);
}

// ---------------------------------------------------------------- harness --

function child(args, nodeFlags = []) {
  const needsTsx = !existsSync(path.join(GH_ROOT, 'dist', 'gateway.js')) || !existsSync(path.join(GH_ROOT, 'client', 'dist', 'index.js'));
  const proc = spawn(process.execPath, [...nodeFlags, ...(needsTsx ? ['--import', 'tsx'] : []), HERE, ...args], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, GATEHOUSE_ROOT: GH_ROOT },
  });
  const firstLine = new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)));
    });
    proc.on('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return { proc, firstLine };
}

async function measure(system, params) {
  // Gatehouse's server runs with the node flags of its executable (bin/gatehouse.js's first line).
  const server = child(['--serve', system], system === 'gatehouse' ? gatehouseNodeFlags(GH_ROOT) : []);
  try {
    const { port } = await server.firstLine;
    const loader = child(['--load', system, String(port), JSON.stringify({ ...params, serverPid: server.proc.pid })]);
    return await loader.firstLine;
  } finally {
    server.proc.kill('SIGKILL');
  }
}

const us = (v) => `${v.toFixed(1)} µs`;

/** Runner interface: rows with the Gatehouse fallback in the `gatehouse` column and the competitor in `ws`. */
export async function run(ctx) {
  if (ctx.options?.gatehouseRoot) process.env.GATEHOUSE_ROOT = path.resolve(ctx.options.gatehouseRoot);
  const params = {
    clients: ctx.quick ? 4 : 10, window: 50, loopClients: ctx.quick ? 10 : 50,
    seconds: ctx.quick ? 2 : (ctx.options?.duration ?? 5), size: 64,
  };
  const results = Object.fromEntries(SYSTEMS.map((s) => [s, []]));
  for (let r = 0; r < ctx.runs; r++) {
    const order = r % 2 === 0 ? SYSTEMS : [...SYSTEMS].reverse();
    for (const system of order) {
      const res = await measure(system, params);
      results[system][r] = res;
      const { pipelined: p, loop: l, single } = res;
      ctx.log(`fallback run ${r + 1}/${ctx.runs} ${LABEL[system].padEnd(32)} ` +
        `${params.clients}×${params.window}: ${Math.round(p.rate).toLocaleString('en-US')} msg/s, CPU/msg server ${us(p.serverUs)} client ${us(p.clientUs)}; ` +
        `${params.loopClients}×1: ${Math.round(l.rate).toLocaleString('en-US')} msg/s, CPU/msg server ${us(l.serverUs)} client ${us(l.clientUs)}, p50 ${l.p50.toFixed(0)} µs; ` +
        `1 session: p50 ${single.p50.toFixed(0)} µs, p99 ${single.p99.toFixed(0)} µs`);
    }
  }
  const pick = (other, f) => ({ gatehouse: results.gatehouse.map(f), ws: results[other].map(f) });
  const rows = [];
  for (const other of ['socketio', 'sockjs']) {
    const vs = `vs ${LABEL[other]}`;
    const piped = `${params.clients} sessions × ${params.window} in flight, 64 B, ${vs}`;
    const loop = `${params.loopClients} sessions × 1 in flight, 64 B, ${vs}`;
    const extra = { params, competitor: LABEL[other], client: CLIENT[other] };
    rows.push(
      { case: piped, metric: 'messages/s', format: 'rate', better: 'higher', values: pick(other, (x) => x.pipelined.rate),
        target: { kind: 'ratio', op: '>=', value: TARGET[other] }, extra },
      { case: piped, metric: 'server CPU / message', format: 'us', better: 'lower', values: pick(other, (x) => x.pipelined.serverUs), extra },
      { case: piped, metric: `client CPU / message (vs ${CLIENT[other]})`, format: 'us', better: 'lower', values: pick(other, (x) => x.pipelined.clientUs), extra },
      { case: loop, metric: 'messages/s', format: 'rate', better: 'higher', values: pick(other, (x) => x.loop.rate), extra },
      { case: loop, metric: 'server CPU / message', format: 'us', better: 'lower', values: pick(other, (x) => x.loop.serverUs),
        ...(other === 'sockjs' ? { target: { kind: 'ratio', op: '<=', value: 1 } } : {}), extra },
      { case: loop, metric: `client CPU / message (vs ${CLIENT[other]})`, format: 'us', better: 'lower', values: pick(other, (x) => x.loop.clientUs),
        ...(other === 'socketio' ? { target: { kind: 'ratio', op: '<=', value: 1 } } : {}), extra },
      { case: loop, metric: 'round trip p50', format: 'us', better: 'lower', values: pick(other, (x) => x.loop.p50), extra },
      { case: `1 session, 1 message at a time, 64 B, ${vs}`, metric: 'round trip p50', format: 'us', better: 'lower',
        values: pick(other, (x) => x.single.p50),
        extra: { p99: { gatehouse: results.gatehouse.map((x) => x.single.p99), competitor: results[other].map((x) => x.single.p99) } } },
    );
  }
  return rows;
}

// ---------------------------------------------------------------- main --

async function standalone(argv) {
  const quick = argv.includes('--quick');
  const runsAt = argv.indexOf('--runs');
  const secAt = argv.indexOf('--seconds');
  const ctx = {
    quick,
    runs: runsAt >= 0 ? Number(argv[runsAt + 1]) : (quick ? 1 : 3),
    options: { duration: secAt >= 0 ? Number(argv[secAt + 1]) : undefined },
    log: (m) => process.stderr.write(`${m}\n`),
  };
  const rows = (await run(ctx)).map((row) => ({ suite: name, ...row }));
  process.stdout.write(`${markdownTable(rows, { labels: { gatehouse: 'Gatehouse', ws: 'competitor' } })}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === HERE) {
  const [mode, system, port, params] = process.argv.slice(2);
  if (mode === '--serve') await serve(system);
  else if (mode === '--load') await load(system, Number(port), JSON.parse(params));
  else await standalone(process.argv.slice(2));
}
