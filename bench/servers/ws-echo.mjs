#!/usr/bin/env node
/**
 * The baseline: a plain `ws` echo server. `ws` with its default options
 * (no permessage-deflate on the server, default maxPayload); the only option
 * given is the path, so that both servers answer on the same URL.
 *
 *   node bench/servers/ws-echo.mjs --port 9001 [--host 127.0.0.1] [--path /echo]
 *
 * Prints one JSON line `{"listening":PORT}` on stdout when ready. SIGTERM exits
 * through process.exit so that `--cpu-prof` profiles are written.
 */
import { WebSocketServer } from 'ws';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '9001'));
const path = arg('--path', '/echo');

const wss = new WebSocketServer({ host, port, path });

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});

wss.on('listening', () => {
  process.stdout.write(`${JSON.stringify({ listening: port })}\n`);
});

wss.on('error', (err) => {
  process.stderr.write(`ws-echo: ${err.message}\n`);
  process.exit(1);
});

process.on('SIGTERM', () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  process.exit(0);
});
