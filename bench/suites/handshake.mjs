/**
 * Suite `handshake`: new WebSocket connections per second through the whole
 * admission pipeline (limits, origin, subprotocol), plain and TLS, against a
 * `ws` server whose `verifyClient` does the same origin check. Target ≥ 1.0× ws.
 *
 * Each server is its own process (Gatehouse: `bin/gatehouse.js start` with a
 * plain and a TLS listener; ws: bench/servers/ws-handshake.mjs). The client
 * runs `CONCURRENCY` loops in this process, each: connect (TLS: full
 * handshake, no session resumption) → send the upgrade request with an allowed
 * Origin → read `101` → close. Connections completed per second over a fixed
 * interval, after a warm-up; every response must be 101.
 *
 * The Gatehouse limits that exist to stop exactly this (20 handshakes/s per
 * address, 256 connections per address) are raised for the benchmark: every
 * connection comes from 127.0.0.1.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from '../lib/proc.mjs';
import { gatehouseNodeFlags } from '../lib/targets.mjs';

export const name = 'handshake';
export const description = 'new connections/s through the admission pipeline, plain and TLS, vs ws + verifyClient';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const HOST = '127.0.0.1';
const ORIGIN = 'https://bench.example';
const CONCURRENCY = 32;
const REQUEST = Buffer.from([
  'GET /echo HTTP/1.1', `Host: ${HOST}`, 'Upgrade: websocket', 'Connection: Upgrade',
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13', `Origin: ${ORIGIN}`,
  '', '',
].join('\r\n'), 'latin1');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, HOST, () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** Start a server process and wait for its `{"listening":...}` line. */
function launch(label, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${label} did not start:\n${err}`)); }, 20000);
    child.stderr.on('data', (d) => { err = (err + d).slice(-4096); });
    child.stdout.on('data', (d) => {
      out += d;
      if (/listening/.test(out)) { clearTimeout(timer); resolve(child); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${label} exited (${code}):\n${err}`)); });
  });
}

async function waitForPort(port) {
  for (let i = 0; i < 400; i++) {
    const ok = await new Promise((r) => { const s = net.connect(port, HOST); s.once('connect', () => { s.destroy(); r(true); }); s.once('error', () => r(false)); });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

async function startGatehouse(dir, cert, key, root) {
  const [port, tlsPort] = [await freePort(), await freePort()];
  const file = path.join(dir, 'gatehouse.yaml');
  writeFileSync(file, `listen:
  - { host: ${HOST}, port: ${port} }
  - { host: ${HOST}, port: ${tlsPort}, tls: { cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)}, watch: false } }
limits: { handshake_rate: 1000000, handshake_burst: 1000000, connections_per_address: 100000, connections_total: 100000 }
log: { level: warn }
shutdown: { drain_timeout: 1s }
services:
  echo: { path: /echo, type: echo, origins: [${JSON.stringify(ORIGIN)}] }
`);
  const child = spawn(process.execPath, [...gatehouseNodeFlags(root), path.join(root, 'bin', 'gatehouse.js'), 'start', '--config', file], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  // Drain stderr (a full pipe would block the gateway's writes).
  child.stderr.resume();
  await waitForPort(tlsPort);
  return { child, port, tlsPort };
}

async function startWs(cert, key) {
  const [port, tlsPort] = [await freePort(), await freePort()];
  const child = await launch('ws', [path.join(ROOT, 'bench', 'servers', 'ws-handshake.mjs'), '--port', String(port), '--tls-port', String(tlsPort),
    '--cert', cert, '--key', key, '--origin', ORIGIN]);
  return { child, port, tlsPort };
}

/** One connection: connect, upgrade, expect 101, close. Resolves true on 101. */
function handshakeOnce(port, secure) {
  return new Promise((resolve) => {
    const socket = secure
      ? tls.connect({ host: HOST, port, rejectUnauthorized: false, session: undefined }, () => socket.write(REQUEST))
      : net.connect(port, HOST, () => socket.write(REQUEST));
    let head = '';
    socket.setEncoding('latin1');
    socket.on('data', (d) => {
      head += d;
      if (head.includes('\r\n')) {
        socket.destroy();
        resolve(head.startsWith('HTTP/1.1 101'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(head.startsWith('HTTP/1.1 101')));
  });
}

/** Handshakes/s over `seconds`, after `warmup` seconds, and the server's CPU µs per handshake meanwhile. */
async function measure(port, secure, warmup, seconds, pid) {
  let counting = false;
  let done = 0;
  let failed = 0;
  let stop = false;
  const loops = Array.from({ length: CONCURRENCY }, async () => {
    while (!stop) {
      const ok = await handshakeOnce(port, secure);
      if (!counting) continue;
      if (ok) done++; else failed++;
    }
  });
  await new Promise((r) => setTimeout(r, warmup * 1000));
  counting = true;
  const cpu0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  counting = false;
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = cpuSeconds(pid) - cpu0;
  stop = true;
  await Promise.all(loops);
  if (failed > 0) throw new Error(`${failed} handshakes did not get 101`);
  // Handshakes completed in the interval; the CPU of the few in flight at its edges is noise of ±32 handshakes.
  return { rate: done / elapsed, cpuUs: (cpu * 1e6) / Math.max(1, done) };
}

export async function run(ctx) {
  const root = ctx.options?.gatehouseRoot ? path.resolve(ctx.options.gatehouseRoot) : ROOT;
  if (!existsSync(path.join(root, 'dist', 'main.js'))) throw new Error(`handshake suite: ${root} is not built`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-bench-hs-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=bench.example', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const seconds = ctx.quick ? 1 : 3;
  // Warm-up: a few thousand handshakes per case, so the window measures the
  // steady state of a long-running server rather than V8 still compiling its
  // handshake code (as in the handshake-jwt suite). TLS runs at ~1/8 of the
  // plain rate, so it gets 3 s: with 1 s (~1,100 handshakes) both servers
  // were still compiling TLS paths in the window (bench/RESULTS.md).
  const cases = [
    { label: 'plain', secure: false, warmup: ctx.quick ? 0.5 : 1 },
    { label: 'TLS', secure: true, warmup: ctx.quick ? 0.5 : 3 },
  ];
  const values = Object.fromEntries(cases.map((c) => [c.label, { gatehouse: [], ws: [] }]));
  const cpu = Object.fromEntries(cases.map((c) => [c.label, { gatehouse: [], ws: [] }]));
  try {
    for (let r = 0; r < ctx.runs; r++) {
      for (const target of ctx.order(r)) {
        const server = target === 'gatehouse' ? await startGatehouse(dir, cert, key, root) : await startWs(cert, key);
        try {
          for (const c of cases) {
            const m = await measure(c.secure ? server.tlsPort : server.port, c.secure, c.warmup, seconds, server.child.pid);
            values[c.label][target][r] = m.rate;
            cpu[c.label][target][r] = m.cpuUs;
            ctx.log(`handshake run ${r + 1}/${ctx.runs} ${target.padEnd(9)} ${c.label.padEnd(5)} ${m.rate.toFixed(0)} conn/s, server CPU ${m.cpuUs.toFixed(0)} µs each`);
          }
        } finally {
          server.child.kill('SIGTERM');
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return cases.flatMap((c) => [{
    case: `new connections, ${c.label}, ${CONCURRENCY} in flight`,
    metric: 'handshakes/s',
    format: 'rate',
    better: 'higher',
    values: values[c.label],
    target: { kind: 'ratio', op: '>=', value: 1.0 },
    extra: { concurrency: CONCURRENCY, seconds, warmup: c.warmup },
  }, {
    case: `new connections, ${c.label}, ${CONCURRENCY} in flight`,
    metric: 'server CPU / handshake',
    format: 'us',
    better: 'lower',
    values: cpu[c.label],
    target: { kind: 'ratio', op: '<=', value: 1.0 },
  }]);
}
