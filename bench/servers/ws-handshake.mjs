#!/usr/bin/env node
/**
 * Baseline for the handshake suite: a `ws` echo server whose `verifyClient`
 * does the same origin check as the Gatehouse service under test (one exact
 * allowed origin), on a plain port and on a TLS port (same certificate).
 *
 *   node bench/servers/ws-handshake.mjs --port P --tls-port Q --cert F --key F --origin https://bench.example
 *
 * Prints `{"listening":[P,Q]}` when ready; SIGTERM exits.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { WebSocketServer } from 'ws';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '9001'));
const tlsPort = Number(arg('--tls-port', '9002'));
const origin = arg('--origin', 'https://bench.example');

const verifyClient = (info) => info.origin === origin;
const servers = [
  http.createServer(),
  https.createServer({ cert: readFileSync(arg('--cert')), key: readFileSync(arg('--key')), minVersion: 'TLSv1.2' }),
];
for (const server of servers) {
  const wss = new WebSocketServer({ server, path: '/echo', verifyClient });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
}
let ready = 0;
servers[0].listen(port, host, () => { if (++ready === 2) process.stdout.write(`${JSON.stringify({ listening: [port, tlsPort] })}\n`); });
servers[1].listen(tlsPort, host, () => { if (++ready === 2) process.stdout.write(`${JSON.stringify({ listening: [port, tlsPort] })}\n`); });
process.on('SIGTERM', () => process.exit(0));
