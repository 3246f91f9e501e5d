/**
 * MQTT inspection from a real browser over the HTTP fallback: Debian's
 * Chromium runs mqtt.js (its browser bundle) with the client library's
 * GatehouseSocket as its socket, forced onto the fallback transport, through
 * the gateway's inspected `tcp` service to a private Mosquitto (password file
 * and ACL; `restricted/#` is open at the broker and closed at the gateway, so
 * a refusal seen there is the gateway's). The token rides in the subprotocol
 * list (`bearer.<jwt>`), as a browser must send it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { buildClient } from '../helpers/client-bundle.js';
import { observeBroker, startMosquitto, type BrokerObserver, type Mosquitto } from '../helpers/mosquitto.js';
import { launchBrowser } from './helpers/browser.js';

const SECRET = 'mqtt-e2e-test-secret-of-at-least-32-bytes';
const BACKEND_PASSWORD = 'injected-by-the-gateway';
/** mqtt.js's browser bundle (the package maps `mqtt/dist/NAME` to `dist/NAME.js`). */
const MQTT_BUNDLE = readFileSync(createRequire(import.meta.url).resolve('mqtt/dist/mqtt.min'), 'utf8');

let broker: Mosquitto;
let gw: TestGateway;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let pages: { server: Server; origin: string };
let observer: BrokerObserver;

function token(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuer('test').setAudience('gatehouse')
    .setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
}

/** `/` loads the client library from the gateway and mqtt.js's browser bundle from here. */
async function startPageServer(gatewayPort: () => number): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/mqtt.min.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(MQTT_BUNDLE);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>devices</title><script src="http://127.0.0.1:${gatewayPort()}/.gatehouse/client.js"></script><script src="/mqtt.min.js"></script>`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

before(async () => {
  await buildClient();
  broker = await startMosquitto({
    users: { alice: BACKEND_PASSWORD, observer: 'observer-password' },
    acl: ['user alice', 'topic readwrite devices/alice/#', 'topic readwrite restricted/#', 'user observer', 'topic readwrite #'],
  });
  pages = await startPageServer(() => gw.port);
  gw = await startGateway({
    services: {
      mqtt: {
        path: '/mqtt', type: 'tcp', backend: `tcp://127.0.0.1:${broker.port}`,
        origins: [pages.origin], subprotocols: ['mqtt'], require_subprotocol: true,
        auth: { methods: [{ type: 'jwt', issuers: [{ issuer: 'test', audience: 'gatehouse', algorithms: ['HS256'], secret: SECRET }] }] },
        inspect: {
          mqtt: {
            publish: ['devices/{principal.id}/#'],
            subscribe: ['devices/{principal.id}/#'],
            connect: { client_id: '{principal.id}', username: '{principal.id}', password: BACKEND_PASSWORD },
          },
        },
      },
    },
  });
  observer = await observeBroker(broker, 'observer', 'observer-password');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await observer?.end();
  pages?.server.close();
  await gw?.stop();
  await broker?.stop();
});

async function openPage(): Promise<Page> {
  const page = await browser.context.newPage();
  await page.goto(`${pages.origin}/`);
  await page.waitForFunction(() => typeof (globalThis as any).Gatehouse === 'object' && typeof (globalThis as any).mqtt === 'object');
  // tsx compiles with keepNames: the functions evaluated in the page call its `__name` helper.
  await page.evaluate('globalThis.__name = (f) => f');
  return page;
}

interface PageRun {
  transports: string[];
  granted: number[];
  received: string[];
  /** 5.0: the refused publish's PUBACK code. */
  refusedPublish?: number;
  /** 3.1.1: the close code the refused publish ended the connection with. */
  closeCode?: number;
}

for (const version of [5, 4] as const) {
  const name = version === 5 ? 'MQTT 5.0' : 'MQTT 3.1.1';
  test(`mqtt.js (${name}) in Chromium over the fallback: allowed round trip, refused subscribe and publish answered in MQTT, broker sees the principal`, { timeout: 60_000 }, async () => {
    const page = await openPage();
    const jwt = await token('alice');
    const payload = `from the browser, ${name}`;
    const run: PageRun = await page.evaluate(({ url, jwt, version, payload }) => new Promise<PageRun>((resolve, reject) => {
      const w = globalThis as any;
      const transports: string[] = [];
      let closeCode: number | undefined;
      const client = w.mqtt.connect(url, {
        protocolVersion: version, clientId: 'not-alice', username: 'mallory', password: 'guess', reconnectPeriod: 0, connectTimeout: 10_000,
        createWebsocket: (u: string, protocols: string[]) => {
          const s = new w.Gatehouse.GatehouseSocket(u, [...protocols, `bearer.${jwt}`], { transport: 'fallback' });
          s.addEventListener('open', () => transports.push(`${s.transport} ${s.protocol}`));
          s.addEventListener('close', (e: { code: number }) => {
            closeCode = e.code;
            if (version === 4) resolve({ transports, granted, received, closeCode });
          });
          return s;
        },
      });
      const received: string[] = [];
      let granted: number[] = [];
      client.on('error', (e: Error) => { if (closeCode === undefined) reject(e); });
      client.on('connect', () => {
        // mqtt.js reports a SUBACK with a failure code as an error that carries the packet.
        client.subscribe({ 'devices/alice/#': { qos: 1 }, 'restricted/#': { qos: 1 } }, (err: (Error & { packet?: { granted: number[] } }) | null) => {
          if (!err?.packet) return reject(err ?? new Error('the SUBACK has no failure code'));
          granted = err.packet.granted;
          client.once('message', (topic: string, bytes: Uint8Array) => {
            received.push(`${topic} ${new TextDecoder().decode(bytes)}`);
            // 3.1.1 has no refusal code: the connection ends (resolved on the close above).
            client.publish('restricted/x', 'must not pass', { qos: 1 }, (refusal?: Error & { code?: number }) => {
              if (version === 5) client.end(false, {}, () => resolve({ transports, granted, refusedPublish: refusal?.code, received }));
            });
          });
          client.publish('devices/alice/temp', payload, { qos: 1 });
        });
      });
    }), { url: gw.url('/mqtt'), jwt, version, payload });
    assert.deepEqual(run.transports, ['fallback mqtt'], 'the fallback transport, subprotocol mqtt (the token entry never echoed)');
    assert.deepEqual(run.granted, [1, version === 5 ? 0x87 : 0x80], 'the refused filter got its failure code, the other its QoS');
    if (version === 5) assert.equal(run.refusedPublish, 0x87, 'the refused publish got PUBACK 0x87');
    else assert.equal(run.closeCode, 1008, 'the refused publish closed the connection with 1008');
    assert.deepEqual(run.received, [`devices/alice/temp ${payload}`]);
    await broker.connected('alice');
    const seen = broker.connections().filter((c) => c.username !== 'observer');
    assert.deepEqual(seen.filter((c) => c.clientId !== 'alice' || c.username !== 'alice'), [], `the broker saw the principal only: ${JSON.stringify(seen)}`);
    // A marker published after the refusal was answered: the refused publish, had it passed, came before it.
    await observer.client.publishAsync('devices/alice/marker', name, { qos: 1 });
    const upTo = await observer.observed(`devices/alice/marker ${name}`);
    assert.ok(upTo.includes(`devices/alice/temp ${payload}`), `the allowed publish reached the broker: ${upTo.join(', ')}`);
    assert.ok(!upTo.some((e) => e.startsWith('restricted/')), `nothing on restricted/ reached the broker: ${upTo.join(', ')}`);
    assert.ok(gw.auditReasons().includes('mqtt_publish_refused') && gw.auditReasons().includes('mqtt_subscribe_refused'));
    await page.close();
  });
}
