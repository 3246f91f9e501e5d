#!/usr/bin/env node
/**
 * CPU per message of the gateway and of its client library on the fallback
 * suite's closed loop (`bench/suites/fallback.mjs`: 50 sessions, one 64-byte
 * text message in flight each, stream mode), over a fixed number of messages
 * rather than a fixed time: for A/B comparisons of two builds on a busy
 * machine, where messages/s means little (CPU time moves with the load too,
 * less so; alternate the builds and repeat).
 *
 *   node bench/fallback-cpu.mjs [--gatehouse-root DIR] [--fetch] [--conns 50] [--warmup 5000] [--messages 10000] [--profile DIR]
 *
 *   --gatehouse-root DIR  the (built) server and client library of another checkout
 *   --fetch               the client library uses Node's fetch (its default in Node is node:http)
 *   --profile DIR         run the gateway with --cpu-prof (summarise with bench/profile-top.mjs)
 *
 * Prints one JSON line: serverUs and clientUs (CPU µs per message: the
 * gateway's utime + stime from /proc, this process's own), rate (msg/s).
 */
import path from 'node:path';
import { killAllServers, ROOT, startTarget } from './lib/targets.mjs';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const root = path.resolve(opt('--gatehouse-root', ROOT));
const conns = Number(opt('--conns', '50'));
const warmup = Number(opt('--warmup', '5000'));
const messages = Number(opt('--messages', '10000'));
const useFetch = argv.includes('--fetch');
// The suite's client comes from the checkout measured (read when the suite module loads).
process.env.GATEHOUSE_ROOT = root;
const { connect } = await import('./suites/fallback.mjs');

process.on('exit', () => killAllServers());
const server = await startTarget('gatehouse', { gatehouseRoot: root, profileDir: opt('--profile', undefined) });
const clients = [];
for (let i = 0; i < conns; i++) {
  // (no stream-delay probes: nothing between them, and they are not the workload)
  clients.push(await connect('gatehouse', server.port, { streamDelay: 0, ...(useFetch ? { fetch: fetch.bind(globalThis) } : {}) }));
}
const payload = 'x'.repeat(64);

/** `total` round trips over all sessions, each keeping one message in flight. */
function roundTrips(total) {
  return new Promise((resolve) => {
    let sent = 0;
    let done = 0;
    for (const c of clients) {
      c.onmessage = () => {
        if (++done === total) resolve();
        else if (sent < total) { sent++; c.send(payload); }
      };
    }
    for (const c of clients) if (sent < total) { sent++; c.send(payload); }
  });
}

await roundTrips(warmup);
const server0 = server.cpuSeconds();
const client0 = process.cpuUsage();
const t0 = performance.now();
await roundTrips(messages);
const seconds = (performance.now() - t0) / 1000;
const serverCpu = server.cpuSeconds() - server0;
const clientCpu = process.cpuUsage(client0);
process.stdout.write(`${JSON.stringify({
  root, client: useFetch ? 'fetch' : 'default', conns, messages,
  serverUs: Math.round((serverCpu * 1e7) / messages) / 10,
  clientUs: Math.round((clientCpu.user + clientCpu.system) / messages * 10) / 10,
  rate: Math.round(messages / seconds),
})}\n`);
for (const c of clients) c.close();
await new Promise((resolve) => setTimeout(resolve, 300));
await server.stop(20_000);
process.exit(0);
