#!/usr/bin/env node
/**
 * Baseline for the JWT handshake benchmark: a plain `ws` echo server that does
 * the same checks Gatehouse's `jwt` method does, in `verifyClient`, with
 * `jose`: Bearer token from Authorization, signature with a pinned algorithm
 * and a key imported once at start (cached), iss, aud, exp required, 30 s skew.
 *
 *   node bench/servers/ws-jwt-echo.mjs --port 9001 --issuer ISS --audience AUD \
 *        --key /jwt-rs=RS256:/tmp/rs.pem --key /jwt-es=ES256:/tmp/es.pem
 *
 * Each --key serves one path with one algorithm and public key (PEM, SPKI).
 * Prints `{"listening":PORT}` on stdout when ready; SIGTERM exits.
 */
import { readFileSync } from 'node:fs';
import { importSPKI, jwtVerify } from 'jose';
import { WebSocketServer } from 'ws';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
function args(name) {
  const out = [];
  for (let i = 0; i < process.argv.length - 1; i++) if (process.argv[i] === name) out.push(process.argv[i + 1]);
  return out;
}

const host = arg('--host', '127.0.0.1');
const port = Number(arg('--port', '9001'));
const issuer = arg('--issuer', 'bench');
const audience = arg('--audience', 'bench');

const routes = new Map();
for (const spec of args('--key')) {
  const m = /^([^=]+)=([A-Za-z0-9]+):(.+)$/.exec(spec);
  if (!m) throw new Error(`bad --key ${spec}`);
  routes.set(m[1], { alg: m[2], key: await importSPKI(readFileSync(m[3], 'utf8'), m[2]) });
}

const wss = new WebSocketServer({
  host,
  port,
  verifyClient(info, done) {
    const route = routes.get((info.req.url ?? '').split('?')[0]);
    const auth = info.req.headers.authorization ?? '';
    if (!route || !auth.startsWith('Bearer ')) { done(false, route ? 401 : 404); return; }
    jwtVerify(auth.slice(7), route.key, {
      issuer, audience, algorithms: [route.alg], clockTolerance: 30, requiredClaims: ['exp'],
    }).then(() => done(true), () => done(false, 401));
  },
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => process.stdout.write(`${JSON.stringify({ listening: port })}\n`));
wss.on('error', (err) => {
  process.stderr.write(`ws-jwt-echo: ${err.message}\n`);
  process.exit(1);
});
process.on('SIGTERM', () => {
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  process.exit(0);
});
