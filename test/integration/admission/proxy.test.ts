/**
 * The client address: PROXY protocol v1/v2 on listeners that enable it (plain
 * and TLS), X-Forwarded-For / Forwarded only from trusted proxies, and the
 * per-address limits keyed on whatever was established.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import WebSocket from 'ws';
import { Canary } from './canary.js';
import { TestPki, rawExchange, startDoor, upgradeRequest, type Door } from './harness.js';

const V2_SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
function v2Header(src: number[], srcPort: number): Buffer {
  const h = Buffer.alloc(28);
  V2_SIG.copy(h, 0);
  h[12] = 0x21; h[13] = 0x11; h.writeUInt16BE(12, 14);
  Buffer.from(src).copy(h, 16);
  Buffer.from([127, 0, 0, 1]).copy(h, 20);
  h.writeUInt16BE(srcPort, 24); h.writeUInt16BE(443, 26);
  return h;
}

let pki: TestPki;
let door: Door;
let canary: Canary;
before(async () => {
  pki = new TestPki();
  const cert = pki.serverCert('p', ['localhost']);
  door = await startDoor({
    // The default header_timeout (10 s): a short one refused prompt clients whenever the loaded machine stalled
    // this process (gateway and clients) past it. Timeouts are tested on a door of their own below.
    listen: [{ port: 0, proxy_protocol: true }, { port: 0, proxy_protocol: true, tls: cert }],
    services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } },
  });
  // The canary comes through the "load balancer" too.
  canary = await Canary.open(`ws://127.0.0.1:${door.ports[0]}/s`, {
    createConnection: () => {
      const s = netConnect(door.ports[0], '127.0.0.1');
      s.write('PROXY TCP4 192.0.2.200 127.0.0.1 1000 80\r\n');
      return s;
    },
  } as WebSocket.ClientOptions);
});
after(async () => {
  canary.close();
  await door.stop();
  pki.cleanup();
});

test('PROXY v1 and v2 headers set the client address (header and request in one write)', async () => {
  const v1 = await rawExchange(door.ports[0], `PROXY TCP4 203.0.113.9 127.0.0.1 56324 80\r\n${upgradeRequest('/s')}`, { waitClose: false });
  assert.equal(v1.status, 101);
  assert.deepEqual(door.admissions.at(-1)?.client, { address: '203.0.113.9', port: 56324 });
  const v2 = await rawExchange(door.ports[0], Buffer.concat([v2Header([198, 51, 100, 7], 4242), Buffer.from(upgradeRequest('/s'))]), { waitClose: false });
  assert.equal(v2.status, 101);
  assert.deepEqual(door.admissions.at(-1)?.client, { address: '198.51.100.7', port: 4242 });
  const local = await rawExchange(door.ports[0], `PROXY UNKNOWN\r\n${upgradeRequest('/s')}`, { waitClose: false });
  assert.equal(local.status, 101);
  assert.equal(door.admissions.at(-1)?.client.address, '127.0.0.1');
  await canary.roundTrip();
});

test('PROXY header before TLS', async () => {
  const status = await new Promise<string>((resolve, reject) => {
    const raw: Socket = netConnect(door.ports[1], '127.0.0.1', () => {
      raw.write(v2Header([203, 0, 113, 50], 5000));
      const s = tlsConnect({ socket: raw, servername: 'localhost', rejectUnauthorized: false }, () => s.write(upgradeRequest('/s', [], 'localhost')));
      s.setEncoding('latin1');
      s.once('data', (d: string) => { resolve(d.split('\r\n')[0]); s.destroy(); });
      s.on('error', reject);
    });
  });
  assert.equal(status, 'HTTP/1.1 101 Switching Protocols');
  assert.equal(door.admissions.at(-1)?.client.address, '203.0.113.50');
  assert.equal(door.admissions.at(-1)?.tls?.servername, 'localhost');
});

test('missing or malformed PROXY headers drop the connection, audited; canary unaffected', async () => {
  const cases = [
    upgradeRequest('/s'),
    'PROXY TCP4 1.2.3.999 127.0.0.1 1 2\r\n' + upgradeRequest('/s'),
    'PROXY TCP4 1.2.3.4 127.0.0.1 1\r\n',
    'PROXY ' + 'x'.repeat(300),
  ];
  const results = await canary.during(Promise.all(cases.map((c) => rawExchange(door.ports[0], c))));
  for (const r of results) {
    assert.equal(r.status, 0, 'no HTTP answer');
    assert.equal(r.closed, true);
  }
  const line = await door.audited('proxy_protocol_invalid');
  assert.ok(line);
  assert.equal(door.metrics.get('gatehouse_rejections_total', { reason: 'proxy_protocol_invalid' }), cases.length);
});

test('a PROXY header that never completes is dropped at header_timeout; one that arrived is read even when the gateway\'s loop stalled past the deadline', async () => {
  const short = await startDoor({
    listen: [{ port: 0, proxy_protocol: true }],
    limits: { header_timeout: '300ms' },
    services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } },
  });
  const refused = (): number => short.metrics.get('gatehouse_rejections_total', { reason: 'proxy_protocol_invalid' });
  try {
    const status = await new Promise<string>((resolve, reject) => {
      const s = netConnect(short.port, '127.0.0.1', () => {
        s.write(`PROXY TCP4 203.0.113.77 127.0.0.1 5000 80\r\n${upgradeRequest('/s')}`);
        // The gateway runs in this process: hold its event loop past the deadline, the header waiting in its socket.
        setImmediate(() => { const until = Date.now() + 500; while (Date.now() < until) { /* a stall, as under load or a long GC */ } });
      });
      let got = '';
      s.setEncoding('latin1');
      s.on('data', (d: string) => { got += d; if (got.includes('\r\n')) { resolve(got.split('\r\n')[0]); s.destroy(); } });
      s.on('error', reject);
      s.on('close', () => resolve(`closed after ${JSON.stringify(got)}`));
    });
    assert.equal(status, 'HTTP/1.1 101 Switching Protocols', 'a header that had arrived is not refused for the gateway\'s own stall');
    assert.equal(short.admissions.at(-1)?.client.address, '203.0.113.77');
    assert.equal(refused(), 0, 'no proxy_protocol_invalid');
    const late = await rawExchange(short.port, 'PROXY TCP4 1.2.3.4 ');
    assert.deepEqual([late.status, late.closed], [0, true], 'never completed: dropped, no HTTP answer');
    assert.equal((await short.audited('proxy_protocol_invalid'))?.detail, 'header timeout');
    assert.equal(refused(), 1);
  } finally {
    await short.stop();
  }
});

test('X-Forwarded-For: honoured from trusted proxies only; per-address limits follow the client', async () => {
  const trusting = await startDoor({
    listen: [{ port: 0 }],
    trusted_proxies: ['127.0.0.0/8'],
    limits: { connections_per_address: 2 },
    services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } },
  });
  const untrusting = await startDoor({ listen: [{ port: 0 }], services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } } });
  try {
    const xff = (a: string): Array<[string, string]> => [['X-Forwarded-For', `10.9.9.9, ${a}`]];
    assert.equal((await rawExchange(untrusting.port, upgradeRequest('/s', xff('198.51.100.20')), { waitClose: false })).status, 101);
    assert.equal(untrusting.admissions.at(-1)?.client.address, '127.0.0.1', 'spoofed header ignored by default');

    assert.equal((await rawExchange(trusting.port, upgradeRequest('/s', [['Forwarded', 'for="[2001:db8::5]:999"']]), { waitClose: false })).status, 101);
    assert.equal(trusting.admissions.at(-1)?.client.address, '127.0.0.1', 'Forwarded is not the header the proxy writes (forwarded_header)');

    const held: Array<Promise<unknown>> = [];
    const open = async (a: string): Promise<number> => {
      const r = await rawExchange(trusting.port, upgradeRequest('/s', xff(a)), { waitClose: true }).catch(() => ({ status: -1 }));
      return r.status;
    };
    // Keep two connections of 198.51.100.20 open (rawExchange with waitClose waits for a close that never comes).
    const sockets: Socket[] = [];
    for (let i = 0; i < 2; i++) {
      const s = netConnect(trusting.port, '127.0.0.1');
      s.write(upgradeRequest('/s', xff('198.51.100.20')));
      held.push(new Promise((r) => s.once('data', r)));
      sockets.push(s);
    }
    await Promise.all(held);
    assert.equal(trusting.admissions.filter((a) => a.client.address === '198.51.100.20').length, 2);
    assert.equal(await open('198.51.100.20'), 429);
    assert.ok(await trusting.audited('too_many_connections'));
    const other = await rawExchange(trusting.port, upgradeRequest('/s', xff('198.51.100.21')), { waitClose: false });
    assert.equal(other.status, 101, 'another client behind the same proxy is not affected');
    for (const s of sockets) s.destroy();
  } finally {
    await trusting.stop();
    await untrusting.stop();
  }
});
