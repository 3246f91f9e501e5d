/**
 * The client library as the socket of an independent protocol library: the
 * `mqtt` npm client (its `createWebsocket`, on its WHATWG WebSocket path) over
 * the HTTP fallback, through the real gateway's `tcp` service, to a real
 * Mosquitto broker.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { startMosquitto, type Mosquitto } from '../services/helpers/processes.js';
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
