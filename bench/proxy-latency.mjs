#!/usr/bin/env node
/**
 * The latency a proxy adds at one connection, measured finely enough to
 * compare builds: one `ws` echo backend reached directly, through a bare Node
 * TCP proxy (bench/servers/bare-relay.mjs: `c.on('data', d => b.write(d))` both
 * ways — the floor for a Node process in the path), through nginx (the proxy suite's configuration; left
 * out when `nginx` is not installed or with --no-nginx), and through one or
 * more Gatehouse builds (`websocket` service). One 64 B message in flight per connection; the targets take turns
 * in bursts of 400 round trips (order alternating), so that the machine's
 * drift on a shared host hits all of them alike. Exact samples, no histogram.
 *
 *   node bench/proxy-latency.mjs [--cycles N] [--no-nginx] [--gatehouse-root NAME=DIR ...]
 *
 * Without --gatehouse-root this checkout (built) is measured as "gatehouse".
 * Prints p50 / p90 round trip and the p50 added over direct for each target.
 * The proxy suite's latency case is the one to quote; this is for A/B.
 */
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { startNginx } from './lib/nginx.mjs';
import { median } from './lib/stats.mjs';
import { GATEHOUSE_ECHO_SERVICE, HOST, killAllServers, ROOT, startTarget } from './lib/targets.mjs';

const args = process.argv.slice(2);
const cyclesAt = args.indexOf('--cycles');
const cycles = cyclesAt >= 0 ? Number(args[cyclesAt + 1]) : 20;
const roots = {};
args.forEach((a, i) => {
  if (a !== '--gatehouse-root') return;
  const [name, dir] = args[i + 1].includes('=') ? args[i + 1].split('=') : [`gatehouse${Object.keys(roots).length || ''}`, args[i + 1]];
  roots[name] = dir;
});
if (Object.keys(roots).length === 0) roots.gatehouse = ROOT;
const BURST = 400;

process.on('exit', () => killAllServers());

const backend = await startTarget('ws');
const urls = { direct: `ws://${HOST}:${backend.port}/echo` };
const config = { services: { proxy: { ...GATEHOUSE_ECHO_SERVICE, path: '/proxy', type: 'websocket', backend: urls.direct } } };
const gateways = [];
for (const [name, dir] of Object.entries(roots)) {
  const g = await startTarget('gatehouse', { config, gatehouseRoot: dir });
  gateways.push(g);
  urls[name] = `ws://${HOST}:${g.port}/proxy`;
}
// The bare relay (bench/servers/bare-relay.mjs) passes the upgrade through: the backend sees /echo.
const bare = await startTarget('bare', { backendPort: backend.port });
urls.bare = `ws://${HOST}:${bare.port}/echo`;

const hasNginx = !args.includes('--no-nginx') && (() => {
  try { execFileSync('nginx', ['-v'], { stdio: 'ignore' }); return true; } catch { return false; }
})();
const nginx = hasNginx ? await startNginx(backend.port) : undefined;
if (nginx) urls.nginx = `ws://${HOST}:${nginx.port}${nginx.path}`;

const sockets = {};
for (const [name, url] of Object.entries(urls)) {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  sockets[name] = ws;
}

const payload = Buffer.alloc(64, 1);
/** n round trips, one at a time; pushes each in µs to `out`. */
function burst(ws, n, out) {
  return new Promise((resolve) => {
    let done = 0;
    let t0 = process.hrtime.bigint();
    const onMessage = () => {
      out.push(Number(process.hrtime.bigint() - t0) / 1000);
      if (++done >= n) {
        ws.off('message', onMessage);
        resolve();
        return;
      }
      t0 = process.hrtime.bigint();
      ws.send(payload);
    };
    ws.on('message', onMessage);
    ws.send(payload);
  });
}

const samples = Object.fromEntries(Object.keys(urls).map((k) => [k, []]));
for (const name of Object.keys(urls)) await burst(sockets[name], 300, []); // warm-up
for (let c = 0; c < cycles; c++) {
  const names = Object.keys(urls);
  for (const name of c % 2 === 0 ? names : names.reverse()) await burst(sockets[name], BURST, samples[name]);
}

const direct = median(samples.direct);
for (const [name, v] of Object.entries(samples)) {
  v.sort((a, b) => a - b);
  const p50 = median(v);
  process.stdout.write(`${name.padEnd(12)} p50 ${p50.toFixed(1).padStart(6)} µs  p90 ${v[Math.floor(v.length * 0.9)].toFixed(1).padStart(6)} µs  ` +
    `added p50 ${(p50 - direct).toFixed(1).padStart(6)} µs\n`);
}
for (const ws of Object.values(sockets)) ws.terminate();
for (const g of gateways) await g.stop();
await bare.stop();
await nginx?.stop();
await backend.stop();
process.exit(0);
