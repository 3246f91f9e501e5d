/**
 * Drain against handshakes already under way. An upgrade or a fallback open
 * that is still waiting for its admission (here: a `forward` auth app that
 * answers slowly) when drain begins is refused with 503 `draining` and an
 * audit line, on both transports. Drain has already closed the channels it knew
 * of; a channel opened after that would get no 1001, only the drain timeout's
 * cut. Connections open before drain still get their 1001.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { closedOf } from './helpers/clients.js';

const ANSWER_AFTER_MS = 500;
let app: http.Server;
let arrivals = 0;
let onArrival = (): void => {};
let gw: TestGateway;

before(async () => {
  app = http.createServer((req, res) => {
    arrivals++;
    onArrival();
    setTimeout(() => { res.writeHead(200, { 'X-Auth-User': 'alice' }); res.end(); }, ANSWER_AFTER_MS);
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const appPort = (app.address() as AddressInfo).port;
  gw = await startGateway({
    services: {
      echo: {
        path: '/echo', type: 'echo', allow_missing_origin: true,
        auth: { methods: [{ type: 'forward', url: `http://127.0.0.1:${appPort}/auth`, timeout: '3s', user_header: 'X-Auth-User', cache: '0s' }] },
      },
    },
  });
});
after(async () => { await new Promise<void>((resolve) => app.close(() => resolve())); });

/** The status an upgrade gets (101 when it opens). */
function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { Cookie: 'sid=a' } });
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate(); });
    ws.on('open', () => { resolve(101); ws.terminate(); });
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });
}

test('an upgrade or fallback open still being admitted when drain begins gets 503 draining; open connections get 1001', async () => {
  const client = await new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(gw.url('/echo'), { headers: { Cookie: 'sid=a' } });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
  const closed = closedOf(client);
  arrivals = 0;
  const bothWaiting = new Promise<void>((resolve) => { onArrival = () => { if (arrivals === 2) resolve(); }; });
  const upgrade = upgradeStatus(gw.url('/echo'));
  const open = fetch(gw.httpUrl('/echo?gh=open'), { method: 'POST', headers: { 'Content-Type': 'text/plain', Cookie: 'sid=a' }, body: '{"protocols":[]}' })
    .then(async (res) => { await res.arrayBuffer(); return { status: res.status, retryAfter: res.headers.get('retry-after') }; });
  await bothWaiting; // both are inside the admission pipeline, waiting for the app

  const stopping = gw.stop(3000);
  assert.equal(await upgrade, 503, 'the upgrade is refused, not opened after drain closed the others');
  assert.deepEqual(await open, { status: 503, retryAfter: '5' });
  assert.equal((await closed).code, 1001, 'the connection open before drain gets its 1001');
  await stopping;
  assert.equal(gw.gateway.front.openChannels, 0);
  const draining = gw.logs.filter((l) => l.audit && l.reason === 'draining');
  assert.deepEqual(draining.map((l) => l.transport).sort(), ['fallback', 'websocket']);
  // Nothing this test opened is left waiting on the app.
  await new Promise((r) => setTimeout(r, ANSWER_AFTER_MS));
});
