#!/usr/bin/env node
/**
 * The baseline: a plain `ws` echo server. `ws` with its default options
 * (no permessage-deflate on the server, default maxPayload); the only option
 * given is the path, so that both servers answer on the same URL.
 *
 *   node bench/servers/ws-echo.mjs --port 9001 [--host 127.0.0.1] [--path /echo] [--deflate same|defaults]
 *
 * `--deflate defaults`: `perMessageDeflate: true`, ws's own compression
 * defaults (context takeover both ways, 15-bit windows, memLevel 8, level
 * default, threshold 1 KiB, 10 zlib operations at once). `--deflate same`:
 * Gatehouse's defaults (`compression: true`) in ws's terms: no context
 * takeover either way, 15-bit windows, memLevel 8, level 6, threshold 1 KiB,
 * 8 zlib operations at once.
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

const DEFLATE = {
  defaults: true,
  same: {
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    threshold: 1024,
    concurrencyLimit: 8,
    zlibDeflateOptions: { level: 6, memLevel: 8 },
  },
};
const deflate = arg('--deflate', undefined);
if (deflate !== undefined && !(deflate in DEFLATE)) throw new Error(`--deflate: same or defaults, not ${deflate}`);

const wss = new WebSocketServer({ host, port, path, ...(deflate !== undefined ? { perMessageDeflate: DEFLATE[deflate] } : {}) });

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
