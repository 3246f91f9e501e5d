#!/usr/bin/env node
/**
 * Suite `fallback`: Gatehouse's HTTP fallback against Socket.IO's long-polling
 * and SockJS's xhr-streaming, on the same machine, same message sizes.
 *
 * For each system, in fresh processes (server and load generator separate, so
 * each has a core of its own on a 2-core machine):
 *   - throughput: `clients` sessions echo 64-byte text messages with up to
 *     `window` messages outstanding each; echoed messages per second over
 *     `seconds` (after a warm-up second);
 *   - latency: one session, one message at a time; median and p99 round trip.
 * Targets (issue 6): ≥ 2× Socket.IO polling and ≥ 1× SockJS streaming in messages/s.
 *
 * In the bench runner (bench/run.mjs) this file is a suite (`name`, `run(ctx)`;
 * the "ws" column holds the competitor). Standalone:
 *   node bench/suites/fallback.mjs [--quick] [--runs N] [--seconds S]
 * The same file is the server (`--serve <system>`) and load (`--load <system>`) child.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GATEHOUSE_ECHO_SERVICE, GATEHOUSE_TOP_LEVEL } from '../lib/targets.mjs';

const HERE = fileURLToPath(import.meta.url);
const ROOT = path.resolve(path.dirname(HERE), '..', '..');

export const name = 'fallback';
export const description = 'HTTP fallback: Gatehouse vs Socket.IO long-polling and SockJS xhr-streaming (messages/s, round trip)';

const SYSTEMS = ['gatehouse', 'socketio', 'sockjs'];
const LABEL = { gatehouse: 'Gatehouse fallback (streaming)', socketio: 'Socket.IO long-polling', sockjs: 'SockJS xhr-streaming' };
const TARGET = { socketio: 2, sockjs: 1 };

// ---------------------------------------------------------------- servers --

async function serve(system) {
  let port;
  if (system === 'gatehouse') {
    const dist = path.join(ROOT, 'dist', 'gateway.js');
    const { Gateway } = await import(existsSync(dist) ? pathToFileURL(dist).href : pathToFileURL(path.join(ROOT, 'src', 'gateway.ts')).href);
    const loadMod = existsSync(dist) ? path.join(ROOT, 'dist', 'config', 'load.js') : path.join(ROOT, 'src', 'config', 'load.ts');
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

/** Connect one client; returns { send(text), onmessage setter, close() } once open. */
async function connect(system, port) {
  if (system === 'gatehouse') {
    const dist = path.join(ROOT, 'client', 'dist', 'index.js');
    const { GatehouseSocket } = await import(existsSync(dist) ? pathToFileURL(dist).href : pathToFileURL(path.join(ROOT, 'client', 'src', 'index.ts')).href);
    const s = new GatehouseSocket(`ws://127.0.0.1:${port}/echo`, [], { transport: 'fallback' });
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

async function load(system, port, { clients, window, seconds, size, serverPid }) {
  const payload = 'x'.repeat(size);
  // Throughput: each client keeps `window` messages in flight.
  const conns = await Promise.all(Array.from({ length: clients }, () => connect(system, port)));
  let counting = false;
  let count = 0;
  let stop = false;
  for (const c of conns) {
    c.onmessage = () => {
      if (counting) count++;
      if (!stop) c.send(payload);
    };
    for (let i = 0; i < window; i++) c.send(payload);
  }
  await sleep(1000); // warm-up
  counting = true;
  const t0 = performance.now();
  const cpu0 = { server: serverPid ? cpuOf(serverPid) : 0, load: process.cpuUsage() };
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  counting = false;
  const loadCpu = process.cpuUsage(cpu0.load);
  // CPU per message, server and client side: what the rate would be with a core each and nothing else running.
  const serverUs = serverPid ? ((cpuOf(serverPid) - cpu0.server) * 1e6) / count : NaN;
  const clientUs = (loadCpu.user + loadCpu.system) / count;
  stop = true;
  const rate = count / elapsed;
  for (const c of conns) c.close();

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
  rtts.sort((a, b) => a - b);
  const q = (p) => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))];
  process.stdout.write(`${JSON.stringify({ rate, p50: q(0.5), p99: q(0.99), serverUs, clientUs })}\n`);
  await sleep(200);
  process.exit(0);
}

// ---------------------------------------------------------------- harness --

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function child(args) {
  const needsTsx = !existsSync(path.join(ROOT, 'dist', 'gateway.js')) || !existsSync(path.join(ROOT, 'client', 'dist', 'index.js'));
  const proc = spawn(process.execPath, [...(needsTsx ? ['--import', 'tsx'] : []), HERE, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
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
  const server = child(['--serve', system]);
  try {
    const { port } = await server.firstLine;
    const loader = child(['--load', system, String(port), JSON.stringify({ ...params, serverPid: server.proc.pid })]);
    return await loader.firstLine;
  } finally {
    server.proc.kill('SIGKILL');
  }
}

/** Runner interface: rows with the Gatehouse fallback in the `gatehouse` column and the competitor in `ws`. */
export async function run(ctx) {
  const params = { clients: ctx.quick ? 4 : 10, window: 50, seconds: ctx.quick ? 2 : (ctx.options?.duration ?? 5), size: 64 };
  const results = Object.fromEntries(SYSTEMS.map((s) => [s, []]));
  for (let r = 0; r < ctx.runs; r++) {
    const order = r % 2 === 0 ? SYSTEMS : [...SYSTEMS].reverse();
    for (const system of order) {
      const res = await measure(system, params);
      results[system][r] = res;
      ctx.log(`fallback run ${r + 1}/${ctx.runs} ${LABEL[system].padEnd(32)} ${Math.round(res.rate).toLocaleString('en-US')} msg/s, ` +
        `round trip p50 ${res.p50.toFixed(0)} µs, p99 ${res.p99.toFixed(0)} µs; CPU/msg server ${res.serverUs.toFixed(1)} µs, client ${res.clientUs.toFixed(1)} µs`);
    }
  }
  const rows = [];
  for (const other of ['socketio', 'sockjs']) {
    rows.push({
      case: `${params.clients}×${params.window} in flight, 64 B, vs ${LABEL[other]}`,
      metric: 'messages/s',
      format: 'rate',
      better: 'higher',
      values: { gatehouse: results.gatehouse.map((x) => x.rate), ws: results[other].map((x) => x.rate) },
      target: { kind: 'ratio', op: '>=', value: TARGET[other] },
      extra: { params, competitor: LABEL[other] },
    });
    rows.push({
      case: `1 message at a time, 64 B, vs ${LABEL[other]}`,
      metric: 'round trip p50',
      format: 'us',
      better: 'lower',
      values: { gatehouse: results.gatehouse.map((x) => x.p50), ws: results[other].map((x) => x.p50) },
      extra: { p99: { gatehouse: results.gatehouse.map((x) => x.p99), competitor: results[other].map((x) => x.p99) } },
    });
  }
  return rows;
}

// ---------------------------------------------------------------- main --

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN; };

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
  const rows = await run(ctx);
  const lines = ['| Case | Metric | Gatehouse | Competitor | Ratio | Target | Met |', '|---|---|---:|---:|---:|---|---|'];
  for (const row of rows) {
    const g = median(row.values.gatehouse);
    const o = median(row.values.ws);
    const ratio = median(row.values.gatehouse.map((v, i) => v / row.values.ws[i]));
    const fmt = (v) => (row.format === 'rate' ? Math.round(v).toLocaleString('en-US') : `${v.toFixed(0)} µs`);
    const met = row.target ? (ratio >= row.target.value ? 'yes' : '**no**') : '';
    lines.push(`| ${row.case} | ${row.metric} | ${fmt(g)} | ${fmt(o)} | ${ratio.toFixed(2)}× | ${row.target ? `≥ ${row.target.value}×` : ''} | ${met} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === HERE) {
  const [mode, system, port, params] = process.argv.slice(2);
  if (mode === '--serve') await serve(system);
  else if (mode === '--load') await load(system, Number(port), JSON.parse(params));
  else await standalone(process.argv.slice(2));
}
