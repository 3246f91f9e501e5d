/**
 * Table-driven handshake rules over real sockets: for each bad input the right
 * HTTP status, an audit line and counter with the reason, and a canary
 * connection that keeps echoing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RawClient } from '../../helpers/raw-client.js';
import { Canary } from './canary.js';
import { rawExchange, startDoor, upgradeRequest, type Door } from './harness.js';

const ORIGIN = 'https://app.example.com';
let door: Door;
let canary: Canary;

before(async () => {
  door = await startDoor({
    listen: [{ port: 0 }],
    limits: { handshake_rate: 1000, handshake_burst: 1000 },
    services: {
      stomp: { path: '/stomp', type: 'echo', origins: [ORIGIN, 'https://*.example.org'], subprotocols: ['v12.stomp', 'v11.stomp'], require_subprotocol: true },
      device: { path: '/device', type: 'echo', allow_missing_origin: true },
    },
  });
  canary = await Canary.open(`ws://127.0.0.1:${door.port}/stomp`, { origin: ORIGIN, protocols: ['v12.stomp'] });
});

after(async () => {
  canary.close();
  await door.stop();
});

const rows: Array<{ name: string; path?: string; headers: Array<[string, string]>; status: number; reason?: string; protocol?: string }> = [
  { name: 'allowed origin and protocol', headers: [['Origin', ORIGIN], ['Sec-WebSocket-Protocol', 'chat, v11.stomp, v12.stomp']], status: 101, protocol: 'v12.stomp' },
  { name: 'subdomain pattern', headers: [['Origin', 'https://a.example.org'], ['Sec-WebSocket-Protocol', 'v11.stomp']], status: 101, protocol: 'v11.stomp' },
  { name: 'missing Origin on a browser service', headers: [['Sec-WebSocket-Protocol', 'v12.stomp']], status: 403, reason: 'origin_missing' },
  { name: 'missing Origin allowed for devices', path: '/device', headers: [], status: 101, protocol: '' },
  { name: 'CSWSH origin', headers: [['Origin', 'https://evil.example'], ['Sec-WebSocket-Protocol', 'v12.stomp']], status: 403, reason: 'origin_not_allowed' },
  { name: 'lookalike origin', headers: [['Origin', 'https://app.example.com.evil.net']], status: 403, reason: 'origin_not_allowed' },
  { name: 'other scheme', headers: [['Origin', 'http://app.example.com']], status: 403, reason: 'origin_not_allowed' },
  { name: 'other port', headers: [['Origin', 'https://app.example.com:8443']], status: 403, reason: 'origin_not_allowed' },
  { name: 'null origin', headers: [['Origin', 'null']], status: 403, reason: 'origin_null' },
  { name: 'two Origin headers', headers: [['Origin', ORIGIN], ['Origin', ORIGIN]], status: 403, reason: 'origin_malformed' },
  { name: 'origin with a path', headers: [['Origin', `${ORIGIN}/x`]], status: 403, reason: 'origin_malformed' },
  { name: 'no acceptable subprotocol', headers: [['Origin', ORIGIN], ['Sec-WebSocket-Protocol', 'chat']], status: 400, reason: 'subprotocol_not_acceptable' },
  { name: 'no subprotocol at all', headers: [['Origin', ORIGIN]], status: 400, reason: 'subprotocol_not_acceptable' },
  { name: 'invalid subprotocol token', headers: [['Origin', ORIGIN], ['Sec-WebSocket-Protocol', 'v12.stomp;q=1']], status: 400, reason: 'invalid_subprotocol' },
  { name: '17 subprotocols', headers: [['Origin', ORIGIN], ['Sec-WebSocket-Protocol', Array.from({ length: 17 }, (_, i) => `p${i}`).join(', ')]], status: 400, reason: 'subprotocol_limit' },
  { name: 'subprotocol header over 4 KiB', headers: [['Origin', ORIGIN], ['Sec-WebSocket-Protocol', `b${' '.repeat(5000)}x`]], status: 400, reason: 'subprotocol_limit' },
  { name: 'a subprotocol offered twice', headers: [['Origin', ORIGIN], ['Sec-WebSocket-Protocol', 'v12.stomp, v12.stomp']], status: 400, reason: 'duplicate_subprotocol' },
  { name: 'unknown path', path: '/nope', headers: [['Origin', ORIGIN]], status: 404 },
];

for (const row of rows) {
  test(`handshake: ${row.name} → ${row.status}`, async () => {
    const before = row.reason ? door.metrics.get('gatehouse_rejections_total', { reason: row.reason }) : 0;
    const client = await RawClient.connect({ port: door.port });
    const headers: Record<string, string[]> = {};
    for (const [k, v] of row.headers) (headers[k] ??= []).push(v);
    const res = await client.upgrade(row.path ?? '/stomp', headers);
    assert.equal(res.status, row.status, res.rawHead);
    if (row.status === 101) {
      assert.equal(res.headers['sec-websocket-protocol'], row.protocol || undefined);
      client.destroy();
    } else {
      assert.match(res.headers.connection ?? '', /close/i);
      await client.expectClosed();
    }
    if (row.reason) {
      assert.equal(door.metrics.get('gatehouse_rejections_total', { reason: row.reason }), before + 1);
      const line = await door.audited(row.reason);
      assert.ok(line, `audit line for ${row.reason}`);
      assert.equal(line.client, '127.0.0.1');
      assert.equal(line.status, row.status);
    }
    await canary.roundTrip();
  });
}

test('bytes pipelined after a refused upgrade are never parsed', async () => {
  const before = door.metrics.get('gatehouse_rejections_total', { reason: 'origin_not_allowed' });
  const text = upgradeRequest('/stomp', [['Origin', 'https://evil.example']]) + 'GET /stomp HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
  const res = await rawExchange(door.port, text);
  assert.equal(res.status, 403);
  assert.equal(res.closed, true);
  assert.equal(res.head.split('HTTP/1.1').length - 1, 1, 'exactly one response');
  assert.equal(door.metrics.get('gatehouse_rejections_total', { reason: 'origin_not_allowed' }), before + 1);
  await canary.roundTrip();
});

test('an independent client (ws) negotiates and echoes through the pipeline', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${door.port}/stomp`, ['v11.stomp'], { origin: 'HTTPS://APP.EXAMPLE.COM:443' });
  await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  assert.equal(ws.protocol, 'v11.stomp');
  const echoed = new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
  ws.send('hello');
  assert.equal(await echoed, 'hello');
  const admission = door.admissions.at(-1);
  assert.equal(admission?.origin, ORIGIN);
  assert.deepEqual(admission?.offeredProtocols, ['v11.stomp']);
  ws.terminate();
});
