/**
 * STOMP inspection from a real browser over the HTTP fallback: a page in
 * Debian's Chromium runs `@stomp/stompjs` (its UMD bundle) on the client
 * library's GatehouseSocket forced to the fallback transport, against a
 * private RabbitMQ behind the gateway — over a `tcp` backend (rabbitmq_stomp)
 * and a `websocket` backend (Web-STOMP). The user is the JWT in a cookie; the
 * broker sees the login the gateway injected. An allowed subscription and send
 * work; a forbidden subscription gets ERROR and close 1008, as over WebSocket.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { buildClient } from '../helpers/client-bundle.js';
import { startRabbitMq, type RabbitMq } from '../helpers/rabbitmq.js';
import { launchBrowser } from './helpers/browser.js';

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const BROKER_PASSWORD = randomBytes(12).toString('hex');
// The browser bundle of stompjs (not in the package's exports: read from its folder).
const STOMP_BUNDLE = readFileSync(fileURLToPath(new URL('../../node_modules/@stomp/stompjs/bundles/stomp.umd.js', import.meta.url)), 'utf8');

let broker: RabbitMq;
let gw: TestGateway;
let page: { server: Server; origin: string };
let browser: Awaited<ReturnType<typeof launchBrowser>>;

/** `/`: a page that loads stompjs and the client library (from the gateway). */
async function startPageServer(gatewayPort: () => number): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/stomp.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' });
      res.end(STOMP_BUNDLE);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>app</title><script src="/stomp.js"></script><script src="http://127.0.0.1:${gatewayPort()}/.gatehouse/client.js"></script>`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

before(async () => {
  await buildClient();
  broker = await startRabbitMq();
  await broker.addUser('alice', BROKER_PASSWORD);
  page = await startPageServer(() => gw.port);
  const service = (path: string, backend: string): Record<string, unknown> => ({
    path, type: backend.startsWith('ws') ? 'websocket' : 'tcp', backend, origins: [page.origin],
    subprotocols: ['v12.stomp', 'v11.stomp', 'v10.stomp'], require_subprotocol: true,
    auth: { methods: [{ type: 'jwt', issuers: [{ issuer: 'test', audience: 'gatehouse', algorithms: ['HS256'], secret: SECRET }], from: ['cookie'] }] },
    inspect: {
      stomp: {
        subscribe: ['/queue/user.{principal.id}'], send: ['/queue/user.{principal.id}'],
        connect: { login: '{principal.id}', passcode: '${BROKER_PASSWORD}', host: '/' },
      },
    },
  });
  gw = await startGateway({
    limits: { handshake_rate: 100_000, handshake_burst: 100_000, message_rate: 100_000 },
    services: { tcp: service('/tcp', broker.stompUrl), ws: service('/ws', broker.webStompUrl) },
  }, { BROKER_PASSWORD });
  browser = await launchBrowser();
  const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuer('test').setAudience('gatehouse')
    .setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
  // Cookies are per host, not per port: the page's host is the gateway's.
  await browser.context.addCookies([{ name: 'access_token', value: jwt, domain: '127.0.0.1', path: '/' }]);
}, { timeout: 180_000 });

after(async () => {
  await browser?.close();
  page?.server.close();
  await gw?.stop();
  await broker?.stop();
}, { timeout: 60_000 });

interface PageResult { transport?: string; version?: string; body?: string; brokerUsers?: string[]; error?: string; close?: { code: number; reason: string }; log: string[] }

/**
 * In the page: stompjs on a fallback GatehouseSocket; subscribe to the user's
 * queue (receipt first), send to it, read it back and call `stompReady` (the
 * test reads the broker's side then); `stompNext()` subscribes where the user
 * may not. Resolves with what happened once the socket closed. Plain
 * JavaScript in a string: what the test runner compiles is not the page's to run.
 */
const PAGE_SCRIPT = `(({ url, queue, forbidden }) => new Promise((resolve) => {
  const result = { log: [] };
  let socket;
  const config = { connectHeaders: { login: 'mallory', passcode: 'not-the-password' }, reconnectDelay: 0, heartbeatIncoming: 0, heartbeatOutgoing: 0 };
  config.webSocketFactory = function () {
    socket = new Gatehouse.GatehouseSocket(url, ['v12.stomp', 'v11.stomp', 'v10.stomp'], { transport: 'fallback', connectTimeout: 5000 });
    return socket;
  };
  config.debug = function (m) { result.log.push(m.slice(0, 200)); };
  const client = new StompJs.Client(config);
  client.onStompError = function (f) { result.error = f.headers.message; };
  client.onWebSocketClose = function (e) { result.close = { code: e.code, reason: e.reason }; resolve(result); };
  client.onConnect = function (frame) {
    result.transport = socket.transport;
    result.version = frame.headers.version;
    client.watchForReceipt('subscribed', function () { client.publish({ destination: queue, body: 'from Chromium \u2713' }); });
    client.subscribe(queue, function (m) {
      result.body = m.body;
      globalThis.stompNext = function () { client.subscribe(forbidden, function () {}, { receipt: 'refused' }); };
      globalThis.stompReady(result);
    }, { receipt: 'subscribed' });
  };
  client.activate();
}))`;

function runInPage(p: Page, url: string, queue: string, forbidden: string): Promise<PageResult> {
  return p.evaluate(`${PAGE_SCRIPT}(${JSON.stringify({ url, queue, forbidden })})`) as Promise<PageResult>;
}

for (const backend of ['tcp', 'ws'] as const) {
  test(`Chromium, fallback transport, ${backend === 'tcp' ? 'tcp' : 'websocket (Web-STOMP)'} backend: stompjs subscribes and sends where allowed; a forbidden SUBSCRIBE gets ERROR and 1008`, { timeout: 90_000 }, async () => {
    const p = await browser.context.newPage();
    try {
      await p.goto(`${page.origin}/`);
      await p.waitForFunction(() => typeof (globalThis as unknown as { Gatehouse?: unknown; StompJs?: unknown }).Gatehouse === 'object'
        && typeof (globalThis as unknown as { StompJs?: unknown }).StompJs === 'object');
      // The page calls stompReady once its message came back; the broker's side is read then.
      let ready!: (r: PageResult) => void;
      const readyInPage = new Promise<PageResult>((resolve) => { ready = resolve; });
      await p.exposeFunction('stompReady', (r: PageResult) => ready(r));
      const done = runInPage(p, gw.url(`/${backend}`), '/queue/user.alice', '/queue/user.bob');
      const mid = await Promise.race([readyInPage, done]);
      assert.equal(mid.body, 'from Chromium ✓', mid.log.join('\n'));
      assert.equal(mid.transport, 'fallback');
      assert.equal(mid.version, '1.2');
      const users = await broker.sessionUsers();
      assert.ok(users.includes('alice') && !users.includes('mallory'), `the broker sees the injected login: ${users.join(', ')}`);
      await p.evaluate('globalThis.stompNext()');
      const end = await done;
      assert.equal(end.error, 'subscription not allowed');
      assert.deepEqual(end.close, { code: 1008, reason: 'stomp_subscribe_denied' });
      assert.ok(gw.logs.some((l) => l.audit && l.reason === 'stomp_subscribe_denied' && l.destination === '/queue/user.bob'), 'audited');
    } finally {
      await p.close();
    }
  });
}
