/**
 * permessage-deflate with a real browser: Debian's Chromium (which offers
 * `permessage-deflate; client_max_window_bits`) exchanges compressed
 * messages with the gateway's echo service, and through a `websocket`
 * service with a `ws` backend that compresses too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { WebSocketServer } from 'ws';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { launchBrowser } from './helpers/browser.js';

let gw: TestGateway;
let wss: WebSocketServer;
let pages: Server;
let origin: string;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
const backendExtensions: string[] = [];

before(async () => {
  pages = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>compression</title>');
  });
  pages.listen(0, '127.0.0.1');
  await once(pages, 'listening');
  origin = `http://127.0.0.1:${(pages.address() as { port: number }).port}`;
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: { threshold: 0 }, maxPayload: 16 * 1024 * 1024 });
  await once(wss, 'listening');
  wss.on('connection', (ws) => {
    backendExtensions.push(ws.extensions);
    ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
  });
  gw = await startGateway({
    services: {
      echo: { path: '/echo', type: 'echo', origins: [origin], compression: true, max_message: '16MiB' },
      relay: { path: '/relay', type: 'websocket', backend: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, origins: [origin], compression: true, max_message: '16MiB' },
    },
    limits: { byte_rate: '64MiB', message_rate: 10_000 },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await gw?.stop();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  await new Promise<void>((resolve) => pages.close(() => resolve()));
});

interface PageResult { extensions: string; ok: Record<string, boolean> }

/**
 * In the page: open a WebSocket, send text and binary of several sizes,
 * compare each echo. A string, so that the test's TypeScript build adds
 * nothing to it that the page does not have.
 */
const PAGE_SCRIPT = `async (target) => {
  const ws = new WebSocket(target);
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = () => reject(new Error('WebSocket failed')); });
  const next = () => new Promise((resolve) => { ws.onmessage = (e) => resolve(e.data); });
  const ok = {};
  for (const size of [0, 10, 2000, 70000, 3 * 1024 * 1024]) {
    const text = '{"user":"h\u00e9l\u00e8ne","text":"hi \u2713","n":1}'.repeat(Math.ceil(size / 40)).slice(0, size);
    const echoText = next();
    ws.send(text);
    ok['text_' + size] = (await echoText) === text;
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = (i * 7) & 0xff;
    const echoBytes = next();
    ws.send(bytes);
    const got = new Uint8Array(await echoBytes);
    ok['binary_' + size] = got.length === size && got.every((b, i) => b === bytes[i]);
  }
  const extensions = ws.extensions;
  ws.close(1000);
  await new Promise((resolve) => { ws.onclose = resolve; });
  return { extensions, ok };
}`;

async function roundTrips(url: string): Promise<PageResult> {
  const page = await browser.context.newPage();
  try {
    await page.goto(origin);
    return await page.evaluate(`(${PAGE_SCRIPT})(${JSON.stringify(url)})`) as PageResult;
  } finally {
    await page.close();
  }
}

function assertResult(r: PageResult): void {
  assert.match(r.extensions, /^permessage-deflate/, `Chromium negotiated: ${r.extensions}`);
  for (const [k, v] of Object.entries(r.ok)) assert.equal(v, true, `${k} came back different`);
}

test('Chromium ↔ echo: permessage-deflate negotiated, text and binary round-trip', { timeout: 120_000 }, async () => {
  assertResult(await roundTrips(gw.url('/echo')));
});

test('Chromium ↔ websocket service ↔ ws backend with perMessageDeflate', { timeout: 120_000 }, async () => {
  const before = backendExtensions.length;
  assertResult(await roundTrips(gw.url('/relay')));
  assert.match(backendExtensions[before] ?? '', /^permessage-deflate/, 'the backend leg is compressed too');
});
