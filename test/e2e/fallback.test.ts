/**
 * Issue 6 in a real browser (Debian's Chromium via playwright-core): a page on
 * origin A uses the client library to reach the gateway on origin B with
 * cookie authentication — over WebSocket, and over the fallback when an nginx
 * in between strips the upgrade; a page on a forbidden origin (same site, so
 * the victim's cookie goes along) is refused on both transports; 10,000
 * messages each way arrive complete and in order while the network between
 * browser and gateway is cut mid-stream.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { Page } from 'playwright-core';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { buildClient } from '../helpers/client-bundle.js';
import { ORIGIN_REFUSALS, TEST_LIMITS } from '../integration/fallback/stand-in-checks.js';
import { startLoginApp, type LoginApp } from '../helpers/login-app.js';
import { freePort } from './helpers/nginx.js';
import { launchBrowser } from './helpers/browser.js';
import { startUpgradeStrippingProxy, type Nginx } from './helpers/nginx.js';
import { startRelay, type Relay } from './helpers/relay.js';

const origins: string[] = [];
let loginApp: LoginApp;
let cookie: string;

let gw: TestGateway;
let nginx: Nginx;
let relay: Relay;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let pageA: { server: Server; origin: string };
let pageC: { server: Server; origin: string };

/** A page server: `/` is an empty page that loads the client library from the gateway. */
async function startPageServer(gatewayPort: () => number): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>app</title><script src="http://127.0.0.1:${gatewayPort()}/.gatehouse/client.js"></script>`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

before(async () => {
  await buildClient();
  pageA = await startPageServer(() => gw.port);
  pageC = await startPageServer(() => gw.port);
  // The login app (real cookie sessions; the gateway's `forward` method asks its /auth).
  loginApp = await startLoginApp({ alice: { password: 'correct horse' } });
  // The gateway's own origin serves the demo page. (Port chosen first so the origin list can name it.)
  const gwPort = await freePort();
  origins.push(pageA.origin, `http://127.0.0.1:${gwPort}`);
  gw = await startGateway({
    listen: [{ host: '127.0.0.1', port: gwPort }],
    limits: TEST_LIMITS,
    services: {
      echo: {
        path: '/echo', type: 'echo', origins,
        auth: { methods: [{ type: 'forward', url: loginApp.authUrl, cookie: 'session' }] },
      },
    },
  });
  nginx = await startUpgradeStrippingProxy(gw.port);
  relay = await startRelay(gw.port);
  browser = await launchBrowser();
  // Log in through the login app's form: the browser now holds its session cookie for
  // 127.0.0.1 (cookies are per host, not per port, so the gateway gets it too).
  const login = await browser.context.newPage();
  await login.goto(`${loginApp.origin}/login`);
  await login.fill('input[name=user]', 'alice');
  await login.fill('input[name=password]', 'correct horse');
  await Promise.all([login.waitForURL(`${loginApp.origin}/`), login.click('button')]);
  cookie = (await browser.context.cookies(loginApp.origin)).find((c) => c.name === 'session')?.value ?? '';
  assert.ok(cookie.length > 0, 'logged in');
  await login.close();
});

after(async () => {
  await browser?.close();
  await nginx?.stop();
  await relay?.stop();
  pageA?.server.close();
  pageC?.server.close();
  await gw?.stop();
  await loginApp?.stop();
});

async function openPage(origin: string): Promise<Page> {
  const page = await browser.context.newPage();
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => typeof (globalThis as unknown as { Gatehouse?: unknown }).Gatehouse === 'object');
  return page;
}

interface EchoResult { opened: boolean; transport: string; mode?: string; echoed?: string; close?: { code: number; wasClean: boolean }; events: string[] }

/** In the page: connect, echo one message, close; report what happened. */
function echoOnce(page: Page, url: string, transport: string): Promise<EchoResult> {
  return page.evaluate(({ url, transport }) => new Promise<EchoResult>((resolve) => {
    const G = (globalThis as unknown as { Gatehouse: { GatehouseSocket: new (u: string, p: string[], o: object) => any } }).Gatehouse;
    const s = new G.GatehouseSocket(url, [], { transport, connectTimeout: 5000 });
    const result: EchoResult = { opened: false, transport: '', events: [] };
    s.onopen = () => { result.opened = true; result.events.push('open'); result.transport = s.transport; result.mode = s.fallbackMode; s.send('hello from the page'); };
    s.onmessage = (e: MessageEvent) => { result.echoed = e.data; result.events.push('message'); s.close(1000, 'done'); };
    s.onerror = () => { result.events.push('error'); };
    s.onclose = (e: { code: number; wasClean: boolean }) => { result.events.push('close'); result.close = { code: e.code, wasClean: e.wasClean }; resolve(result); };
  }), { url, transport });
}

test('origin A reaches the gateway on origin B with cookie authentication over WebSocket', async () => {
  const page = await openPage(pageA.origin);
  const r = await echoOnce(page, gw.url('/echo'), 'auto');
  assert.deepEqual(r.events, ['open', 'message', 'close']);
  assert.equal(r.transport, 'websocket');
  assert.equal(r.echoed, 'hello from the page');
  assert.deepEqual(r.close, { code: 1000, wasClean: true });
  assert.ok(!gw.logText().includes(cookie), 'the cookie never reaches the log');
  await page.close();
});

test('behind an nginx that strips the Upgrade, the client falls back by itself and streams', async () => {
  const page = await openPage(pageA.origin);
  const before = gw.auditReasons().filter((r) => r === 'upgrade_required').length;
  const r = await echoOnce(page, `ws://127.0.0.1:${nginx.port}/echo`, 'auto');
  assert.deepEqual(r.events, ['open', 'message', 'close']);
  assert.equal(r.transport, 'fallback');
  assert.equal(r.mode, 'stream');
  assert.equal(r.echoed, 'hello from the page');
  assert.deepEqual(r.close, { code: 1000, wasClean: true });
  // The WebSocket attempt reached the gateway as a plain GET: the upgrade was indeed stripped.
  assert.ok(gw.auditReasons().filter((r) => r === 'upgrade_required').length > before);
  await page.close();
});

test('a page on a forbidden origin — with the victim\'s cookie — is refused on both transports', async () => {
  const page = await openPage(pageC.origin);
  const before = gw.logs.length;
  for (const transport of ['websocket', 'fallback', 'auto']) {
    const r = await echoOnce(page, gw.url('/echo'), transport);
    assert.equal(r.opened, false, transport);
    assert.deepEqual(r.events, ['error', 'close'], transport);
    assert.equal(r.close?.code, 1006);
  }
  const refused = gw.logs.slice(before).filter((l) => l.audit && ORIGIN_REFUSALS.includes(l.reason as string)).map((l) => l.transport);
  assert.ok(refused.includes('websocket'), 'refused over WebSocket');
  assert.ok(refused.includes('fallback'), 'refused over the fallback');
  assert.equal(gw.gateway.front.openChannels, 0);
  // A canary on the allowed origin still works.
  const canary = await openPage(pageA.origin);
  assert.equal((await echoOnce(canary, gw.url('/echo'), 'fallback')).echoed, 'hello from the page');
  await canary.close();
  await page.close();
});

test('10,000 messages each way arrive complete and in order while the network is cut mid-stream', async () => {
  const page = await openPage(pageA.origin);
  const url = `ws://127.0.0.1:${relay.port}/echo`;
  await page.evaluate((url) => {
    const w = globalThis as unknown as Record<string, any>;
    const s = new w.Gatehouse.GatehouseSocket(url, [], { transport: 'fallback' });
    s.binaryType = 'arraybuffer';
    w.received = 0;
    w.bad = [] as string[];
    w.done = new Promise<void>((resolve, reject) => {
      s.onopen = () => {
        for (let i = 0; i < 10_000; i++) {
          if (i % 4 === 0) s.send(new Uint32Array([i]).buffer);
          else s.send(`m${i}`);
        }
      };
      s.onmessage = (e: MessageEvent) => {
        const i = w.received;
        const value = typeof e.data === 'string' ? e.data : `bin${new Uint32Array(e.data)[0]}`;
        const expected = i % 4 === 0 ? `bin${i}` : `m${i}`;
        if (value !== expected && w.bad.length < 10) w.bad.push(`${i}: ${value}`);
        w.received = i + 1;
        if (w.received === 10_000) { s.close(1000); resolve(); }
      };
      s.onclose = (e: { code: number; wasClean: boolean }) => { if (w.received < 10_000) reject(new Error(`closed ${e.code} after ${w.received}`)); };
    });
  }, url);
  // Cut every connection (the stream and any batch in flight) twice, in the middle of the run.
  await page.waitForFunction(() => (globalThis as unknown as { received: number }).received >= 2_000);
  assert.ok(relay.cut() > 0);
  await page.waitForFunction(() => (globalThis as unknown as { received: number }).received >= 6_000);
  assert.ok(relay.cut() > 0);
  await page.evaluate(() => (globalThis as unknown as { done: Promise<void> }).done);
  const { received, bad } = await page.evaluate(() => ({ received: (globalThis as any).received as number, bad: (globalThis as any).bad as string[] }));
  assert.deepEqual(bad, []);
  assert.equal(received, 10_000);
  assert.equal(relay.cuts, 2);
  await page.close();
});

test('the demo page: connect to the echo service, force the fallback, send and receive', async () => {
  const page = await browser.context.newPage();
  await page.goto(gw.httpUrl('/.gatehouse/demo'));
  await page.check('input[value=fallback]');
  await page.click('#connect');
  await page.waitForFunction(() => (globalThis as any).document.getElementById('state').textContent === 'open');
  assert.equal(await page.textContent('#transport'), 'fallback (streaming)');
  await page.fill('#text', 'demo message');
  await page.click('#send');
  await page.waitForSelector('.in');
  assert.match(await page.textContent('.in') ?? '', /← demo message/);
  await page.click('#disconnect');
  await page.waitForFunction(() => (globalThis as any).document.getElementById('state').textContent === 'closed');
  await page.close();
});

test('behind an intermediary that buffers the stream, the client detects it and long-polls', async () => {
  const buffering = await startUpgradeStrippingProxy(gw.port, { buffering: true });
  try {
    const page = await openPage(pageA.origin);
    const r = await page.evaluate((url) => new Promise<{ mode: string; echoed: string[] }>((resolve, reject) => {
      const w = globalThis as unknown as Record<string, any>;
      const s = new w.Gatehouse.GatehouseSocket(url, [], { transport: 'auto', streamTimeout: 1500 });
      const echoed: string[] = [];
      s.onopen = () => { for (let i = 0; i < 50; i++) s.send(`poll ${i}`); };
      s.onmessage = (e: MessageEvent) => { echoed.push(e.data); if (echoed.length === 50) { resolve({ mode: s.fallbackMode, echoed }); s.close(); } };
      s.onclose = (e: { code: number; wasClean: boolean }) => { if (echoed.length < 50) reject(new Error(`closed ${e.code}`)); };
    }), `ws://127.0.0.1:${buffering.port}/echo`);
    assert.equal(r.mode, 'poll');
    assert.deepEqual(r.echoed, Array.from({ length: 50 }, (_, i) => `poll ${i}`));
    await page.close();
  } finally {
    await buffering.stop();
  }
});
