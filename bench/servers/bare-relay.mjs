#!/usr/bin/env node
/**
 * The floor of a Node process in the path: a bare TCP relay. Each accepted
 * socket is piped to a new connection to the backend, both ways, with
 * `c.on('data', d => b.write(d))` — no parsing, no checks, no backpressure.
 * Whatever a Node gateway does per message, it pays at least this (the read,
 * the write syscall carrying the loopback peer's input path, the event loop's
 * turn), so the proxy suite measures it in the same run as Gatehouse.
 *
 *   node bench/servers/bare-relay.mjs --port P --backend-port B [--host 127.0.0.1]
 *
 * Not a proxy anyone should run: the WebSocket upgrade passes through as bytes.
 */
import net from 'node:net';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '0'));
const backendPort = Number(arg('--backend-port', '0'));

const server = net.createServer((c) => {
  const b = net.connect(backendPort, host);
  c.setNoDelay(true);
  b.setNoDelay(true);
  c.on('data', (d) => b.write(d));
  b.on('data', (d) => c.write(d));
  c.on('error', () => b.destroy());
  b.on('error', () => c.destroy());
  c.on('close', () => b.destroy());
  b.on('close', () => c.destroy());
});

server.listen(port, host, () => process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`));

process.on('SIGTERM', () => process.exit(0));
