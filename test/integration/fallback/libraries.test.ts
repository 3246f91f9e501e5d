/**
 * The client library as the socket of an independent protocol library: the
 * `mqtt` npm client (its `createWebsocket`, on its WHATWG WebSocket path) over
 * the HTTP fallback, through the real gateway's `tcp` service, to a real
 * Mosquitto broker; credential expiry and the origin allow-list on the fallback.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { startMosquitto, type Mosquitto } from '../../helpers/mosquitto.js';
import { GatehouseSocket } from '../../../client/src/index.js';
import { originKeys, REAL_ORIGIN_CHECK, TEST_LIMITS } from './stand-in-checks.js';

let broker: Mosquitto;
let gw: TestGateway;
before(async () => {
  broker = await startMosquitto();
  gw = await startGateway({
    limits: TEST_LIMITS,
    services: {
      mqtt: {
        path: '/mqtt', type: 'tcp', backend: `tcp://127.0.0.1:${broker.port}`,
        ...originKeys({ origins: [], allowMissing: true, subprotocols: ['mqtt'] }),
      },
    },
  });
});
after(async () => { await gw.stop(); await broker.stop(); });

test('mqtt over the fallback (createWebsocket → GatehouseSocket): subscribe, publish, receive binary intact', async () => {
  const sockets: GatehouseSocket[] = [];
  const connect = (clientId: string) => mqtt.connectAsync(gw.url('/mqtt'), {
    clientId,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    // mqtt.js's WHATWG WebSocket path, with our socket in place of WebSocket.
    forceNativeWebSocket: true,
    createWebsocket: (url: string, protocols: string[]) => {
      const s = new GatehouseSocket(url, protocols, { transport: 'fallback' });
      sockets.push(s);
      return s as never;
    },
  });
  const sub = await connect('fallback-sub');
  const pub = await connect('fallback-pub');
  try {
    // With the admission module the service negotiates `mqtt`; without it nothing is chosen.
    const protocol = REAL_ORIGIN_CHECK ? 'mqtt' : '';
    assert.deepEqual(sockets.map((s) => [s.transport, s.protocol]), [['fallback', protocol], ['fallback', protocol]]);
    await sub.subscribeAsync('gatehouse/fallback', { qos: 1 });
    const received = new Promise<[string, Buffer]>((resolve) => sub.once('message', (t, p) => resolve([t, p])));
    const payload = Buffer.from([0, 1, 2, 0xff, 0xfe, 10, 13]);
    await pub.publishAsync('gatehouse/fallback', payload, { qos: 1 });
    const [topic, got] = await received;
    assert.equal(topic, 'gatehouse/fallback');
    assert.deepEqual(got, payload);
  } finally {
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  }
  for (const s of sockets) assert.equal(s.readyState, GatehouseSocket.CLOSED);
});

test('credential expiry ends a fallback session as it ends a WebSocket connection: close 1008', async () => {
  const { SignJWT } = await import('jose');
  const secret = 'a-shared-secret-of-at-least-32-bytes!!';
  const own = await startGateway({
    limits: TEST_LIMITS,
    services: {
      echo: {
        path: '/echo', type: 'echo', allow_missing_origin: true,
        auth: { methods: [{ type: 'jwt', issuers: [{ issuer: 'test', audience: 'gatehouse', algorithms: ['HS256'], secret }], from: ['header'], clock_skew: 0 }] },
      },
    },
  });
  try {
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuer('test').setAudience('gatehouse')
      .setExpirationTime(Math.floor(Date.now() / 1000) + 2).sign(new TextEncoder().encode(secret));
    const codes: Record<string, number> = {};
    await Promise.all((['websocket', 'fallback'] as const).map(async (transport) => {
      const { WebSocket } = await import('ws');
      const s = new GatehouseSocket(own.url('/echo'), [], { transport, WebSocket: WebSocket as never, headers: { Authorization: `Bearer ${token}` } });
      await new Promise<void>((resolve, reject) => { s.onopen = () => resolve(); s.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
      const closed = await new Promise<{ code: number }>((resolve) => { s.onclose = (e) => resolve(e); });
      codes[transport] = closed.code;
    }));
    assert.deepEqual(codes, { websocket: 1008, fallback: 1008 });
    assert.ok(!own.logText().includes(token), 'the token never reaches the log');
  } finally {
    await own.stop();
  }
});

test('CORS and session requests follow the service\'s origin allow-list, subdomain patterns included', async () => {
  const { openSession, RawSession } = await import('./raw.js');
  const own = await startGateway({ services: { echo: { path: '/echo', type: 'echo', origins: ['https://*.example.com'] } } });
  try {
    const base = own.httpUrl('/echo');
    const pre = await fetch(base, { method: 'OPTIONS', headers: { Origin: 'https://app.example.com', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example.com');
    for (const bad of ['https://example.com', 'https://app.example.com.evil.net', 'http://app.example.com']) {
      const r = await fetch(base, { method: 'OPTIONS', headers: { Origin: bad, 'Access-Control-Request-Method': 'POST' } });
      assert.equal(r.status, 403, bad);
      await r.arrayBuffer();
    }
    const { res, sid } = await openSession(base, { Origin: 'https://app.example.com' });
    assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const s = new RawSession(base, sid!, { Origin: 'https://app.example.com' });
    assert.equal(await s.echo('sub-domain'), 'sub-domain');
  } finally {
    await own.stop();
  }
});
