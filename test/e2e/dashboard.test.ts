/**
 * The admin dashboard in a real browser (Debian's Chromium): opened under
 * traffic with the token in the link's fragment, its charts drawn from the
 * bundled uPlot (no request leaves the admin listener), and the numbers it
 * shows are those of /metrics. A screenshot is kept in test-artifacts/.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { launchBrowser } from './helpers/browser.js';

/** The page's DOM, as far as the checks run in the page read it (the test is compiled without the DOM library). */
interface PageDocument { getElementById(id: string): { textContent: string | null } | null }

const TOKEN = 'dashboard-test-token-0123456789';
const ARTIFACTS = join(import.meta.dirname, '../../test-artifacts');
const ROOT = join(import.meta.dirname, '../..');
let gw: TestGateway;
let browser: Awaited<ReturnType<typeof launchBrowser>>;
let adminUrl: string;

before(async () => {
  execFileSync(process.execPath, [join(ROOT, 'dashboard/build.mjs')], { stdio: 'inherit' });
  gw = await startGateway({
    admin: { host: '127.0.0.1', port: 0, token: TOKEN },
    services: {
      echo: { path: '/echo', type: 'echo', allow_missing_origin: true },
      locked: { path: '/locked', type: 'echo', origins: ['https://app.example'] },
    },
  });
  adminUrl = `http://127.0.0.1:${gw.gateway.admin!.address!.port}`;
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await gw?.stop();
});

/** The header numbers the dashboard shows, by element id. */
const SHOWN = ['open-connections', 'handshakes-accepted', 'handshakes-refused', 'messages-in', 'messages-out'] as const;

async function metricsNow(): Promise<Record<(typeof SHOWN)[number], number>> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const total = (name: string, match: RegExp = /./): number => text.split('\n')
    .filter((l) => l.startsWith(`${name}{`) && match.test(l)).reduce((s, l) => s + Number(l.split(' ').at(-1)), 0);
  return {
    'open-connections': total('gatehouse_connections_open'),
    'handshakes-accepted': total('gatehouse_handshakes_total', /outcome="accepted"/),
    'handshakes-refused': total('gatehouse_handshakes_total', /outcome="refused"/),
    'messages-in': total('gatehouse_messages_total', /direction="in"/),
    'messages-out': total('gatehouse_messages_total', /direction="out"/),
  };
}

test('the dashboard shows the numbers of /metrics under traffic, with charts and principals', { timeout: 60_000 }, async () => {
  const requests: string[] = [];
  const page = await browser.context.newPage();
  page.on('request', (r) => requests.push(r.url()));
  const clients = await Promise.all([0, 1, 2, 3].map(async () => {
    const ws = new WebSocket(gw.url('/echo'));
    await once(ws, 'open');
    return ws;
  }));
  const refused = new WebSocket(gw.url('/locked'), { origin: 'https://evil.example' });
  await once(refused, 'error');
  // Traffic while the page loads and scrapes.
  let sending = true;
  const pump = (async () => {
    while (sending) {
      await Promise.all(clients.map((ws) => new Promise<void>((resolve) => { ws.once('message', () => resolve()); ws.send('tick'); })));
    }
  })();
  await page.goto(`${adminUrl}/#token=${TOKEN}`);
  await page.waitForFunction(() => Number((globalThis as unknown as { document: PageDocument }).document.getElementById('scrapes')?.textContent) >= 2, undefined, { timeout: 15_000 });
  sending = false;
  await pump;

  // Traffic has stopped: within a few scrapes the page shows exactly what /metrics says.
  const expected = await metricsNow();
  assert.ok(expected['messages-in'] > 0 && expected['open-connections'] === 4, `traffic happened: ${JSON.stringify(expected)}`);
  await page.waitForFunction((want) => Object.entries(want).every(([id, v]) => (globalThis as unknown as { document: PageDocument }).document.getElementById(id)?.textContent === String(v)),
    expected, { timeout: 15_000 }).catch(() => undefined);
  const shown: Record<string, number> = {};
  for (const id of SHOWN) shown[id] = Number(await page.textContent(`#${id}`));
  assert.deepEqual(shown, expected, 'the dashboard shows the numbers /metrics has');

  assert.equal(await page.locator('.uplot canvas').count(), 3, 'three charts drawn');
  assert.match(await page.textContent('#refusals') ?? '', /origin_not_allowed/, 'refusals by reason');
  assert.match(await page.textContent('#services') ?? '', /echo/, 'busiest services');
  assert.doesNotMatch(await page.textContent('#principals') ?? '', /refused|#token/, 'the token was accepted by /api/top');
  assert.ok(requests.every((u) => u.startsWith(adminUrl)), `every request stays on the admin listener: ${requests.filter((u) => !u.startsWith(adminUrl)).join(', ')}`);
  assert.ok(!page.url().includes(TOKEN), 'the token is taken out of the address bar');

  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  await Promise.all(clients.map(async (ws) => { ws.close(); await once(ws, 'close'); }));
});
