#!/usr/bin/env node
/**
 * Where the memory of idle connections goes: start a server, take a V8 heap
 * snapshot before and after opening N idle connections, and print the
 * difference per connection by object kind (constructor name), largest first.
 *
 *   node bench/heap-idle.mjs [gatehouse|ws] [--service echo|proxy|jwt] [--compression SETTING] [--connections N] [--top N] [--gatehouse-root DIR] [--keep]
 *
 * `--compression SETTING` measures idle *compressed* connections: each offers
 * permessage-deflate as Chromium does (`client_max_window_bits`) and
 * exchanges one 4 KiB compressed JSON message each way before idling (so
 * whatever a server keeps per connection after compressing is counted).
 * Gatehouse settings: `defaults` (`compression: true`), `server-takeover`,
 * `client-takeover`, `takeover` (context takeover on that side / both),
 * `takeover-small` (both, with 10-bit windows and mem_level 4). ws settings:
 * `defaults` (`perMessageDeflate: true`, ws's own defaults: context takeover
 * both ways), `same` (Gatehouse's defaults in ws's terms). zlib's memory is
 * native: compare the RSS lines, not only the JS heap.
 *
 * `--service proxy` (Gatehouse only) measures idle *proxied* connections, as
 * the proxy suite sets them up: a `ws` echo backend (bench/servers/ws-echo.mjs)
 * behind a `websocket` service, so each connection is the client side, the
 * backend-side client-role connection and the relay. Only the Gatehouse
 * process is snapshotted. `--service jwt` (Gatehouse only) measures idle
 * *authenticated* connections: an echo service with the `jwt` method (ES256,
 * a local key), each connection admitted with a Bearer token, so what a
 * principal and its credential-expiry watch keep is counted.
 *
 * The JS heap is only part of RSS: native
 * memory (libuv handles, stream buffers, V8 heap fragmentation and unused
 * pages) is the rest. Snapshots are written to a temporary directory and
 * deleted afterwards (kept with --keep). Taking a snapshot forces full GCs, so these numbers are
 * "after GC" and are not comparable to the idle suite's.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ECHO_PATH, GATEHOUSE_ECHO_SERVICE, HOST, startTarget } from './lib/targets.mjs';
import { aggregate, snapshotNodeArgs, takeSnapshot } from './lib/heap-snapshot.mjs';
import { LoadgenPool } from './lib/loadgen-pool.mjs';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const target = args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1].startsWith('--'))) ?? 'gatehouse';
const total = Number(opt('--connections', '10000'));
const TOP = Number(opt('--top', '25'));
const service = opt('--service', 'echo');
const compression = opt('--compression');
/** Gatehouse `compression:` per setting name; ws's --deflate per setting name. */
const GATEHOUSE_COMPRESSION = {
  defaults: true,
  'server-takeover': { server_no_context_takeover: false },
  'client-takeover': { client_no_context_takeover: false },
  takeover: { server_no_context_takeover: false, client_no_context_takeover: false },
  'takeover-small': { server_no_context_takeover: false, client_no_context_takeover: false, server_max_window_bits: 10, client_max_window_bits: 10, mem_level: 4 },
};
const WS_DEFLATE = { defaults: 'defaults', same: 'same' };
if (compression !== undefined) {
  const known = target === 'ws' ? WS_DEFLATE : GATEHOUSE_COMPRESSION;
  if (!(compression in known)) throw new Error(`--compression for ${target}: ${Object.keys(known).join(', ')}, not ${compression}`);
  if (service !== 'echo') throw new Error('--compression measures the echo service');
}
if (!['echo', 'proxy', 'jwt'].includes(service)) throw new Error(`--service: echo, proxy or jwt, not ${service}`);
if (service !== 'echo' && target !== 'gatehouse') throw new Error(`--service ${service} measures Gatehouse only`);
/** The proxy suite's path for its `websocket` service (bench/suites/proxy.mjs). */
const PROXY_PATH = '/proxy';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(path.join(os.tmpdir(), 'gatehouse-heap-'));
const backend = service === 'proxy' ? await startTarget('ws') : undefined;
/** `--service jwt`: an ES256 key of this run, its public half as the service's key file, and a 2 h token. */
async function jwtSetup() {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const pem = path.join(dir, 'es256.pem');
  writeFileSync(pem, await exportSPKI(publicKey));
  const token = await new SignJWT({ roles: ['bench'] }).setProtectedHeader({ alg: 'ES256' }).setSubject('bench-user')
    .setIssuer('https://bench.gatehouse.test').setAudience('bench').setIssuedAt().setExpirationTime('2h').sign(privateKey);
  return {
    headers: { Authorization: `Bearer ${token}` },
    services: {
      jwt: {
        ...GATEHOUSE_ECHO_SERVICE, path: JWT_PATH, type: 'echo',
        auth: { methods: [{ type: 'jwt', issuers: [{ issuer: 'https://bench.gatehouse.test', audience: 'bench', algorithms: 'ES256', key_files: pem }] }] },
      },
    },
  };
}
const JWT_PATH = '/jwt';
const jwt = service === 'jwt' ? await jwtSetup() : undefined;
const started = await startTarget(target, {
  nodeArgs: snapshotNodeArgs(dir),
  gatehouseRoot: opt('--gatehouse-root'),
  wsArgs: compression !== undefined ? ['--deflate', WS_DEFLATE[compression]] : [],
  config: compression !== undefined ? {
    services: { echo: { ...GATEHOUSE_ECHO_SERVICE, path: ECHO_PATH, type: 'echo', compression: GATEHOUSE_COMPRESSION[compression] } },
  } : backend !== undefined ? {
    services: {
      proxy: { ...GATEHOUSE_ECHO_SERVICE, path: PROXY_PATH, type: 'websocket', backend: `ws://${HOST}:${backend.port}/echo` },
    },
  } : jwt !== undefined ? { services: jwt.services } : undefined,
});
const server = compression !== undefined ? { ...started, label: `${started.label} (echo, compression ${compression})` }
  : backend !== undefined ? { ...started, label: `${started.label} (websocket service → ws echo)`, path: PROXY_PATH }
  : jwt !== undefined ? { ...started, label: `${started.label} (echo service, jwt ES256)`, path: JWT_PATH }
    : started;
const connectOptions = jwt !== undefined ? { headers: jwt.headers }
  : compression !== undefined ? { headers: { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } } : {};
/** What each connection exchanges before idling: one compressed 4 KiB text message when measuring compression. */
const exchange = compression !== undefined ? { size: 4096, deflate: true, text: true } : { size: 64 };
const pool = LoadgenPool.spawn(Math.max(2, Math.ceil(total / 5000)));
try {
  await pool.connect(server, 100, connectOptions);
  await pool.all('verify', exchange);
  await pool.all('close', { timeoutMs: 5000 });
  await sleep(2000);
  const rss0 = server.rssKiB();
  const a = aggregate(await takeSnapshot(server.pid, dir));
  await pool.connect(server, total, { concurrency: 50, ...connectOptions });
  if (compression !== undefined) await pool.all('verify', exchange);
  await sleep(3000);
  const rss1 = server.rssKiB();
  const b = aggregate(await takeSnapshot(server.pid, dir));
  const rss2 = server.rssKiB();
  await pool.assertClean('heap-idle');

  const rows = [];
  for (const [key, e] of b.groups) {
    const p = a.groups.get(key) ?? { count: 0, size: 0 };
    rows.push({ key, count: (e.count - p.count) / total, size: (e.size - p.size) / total });
  }
  rows.sort((x, y) => y.size - x.size);
  const heapPer = (b.totalSize - a.totalSize) / total;
  process.stdout.write(`${server.label}, ${total} idle connections\n` +
    `VmRSS: ${rss0} KiB before, ${rss1} KiB with the connections, ${rss2} KiB after the second snapshot ` +
    '(inflated by the snapshots themselves: use the idle suite for RSS)\n' +
    `JS heap (live objects, after GC): ${(heapPer / 1024).toFixed(2)} KiB/conn\n\n` +
    `  bytes/conn  objects/conn  kind\n`);
  for (const r of rows.slice(0, TOP)) {
    process.stdout.write(`${r.size.toFixed(0).padStart(12)}  ${r.count.toFixed(2).padStart(12)}  ${r.key}\n`);
  }
} finally {
  await server.stop();
  await backend?.stop();
  await pool.close({ graceful: false });
  if (args.includes('--keep')) process.stdout.write(`snapshots kept in ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
}
