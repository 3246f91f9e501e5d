/**
 * The metrics under real traffic: a scrape taken while WebSocket clients talk
 * to the gateway passes `promtool check metrics` (Debian's prometheus
 * package), and the counts in it are the traffic that was sent.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';

const PROMTOOL = process.env.GATEHOUSE_PROMTOOL ?? '/usr/bin/promtool';
let gw: TestGateway;

before(async () => {
  gw = await startGateway({
    admin: { host: '127.0.0.1', port: 0 },
    services: {
      echo: { path: '/echo', type: 'echo', allow_missing_origin: true },
      locked: { path: '/locked', type: 'echo', origins: ['https://app.example'] },
    },
  });
});
after(async () => { await gw.stop(); });

async function openEcho(): Promise<WebSocket> {
  const ws = new WebSocket(gw.url('/echo'));
  await once(ws, 'open');
  return ws;
}

/** Send `n` messages of `size` bytes and wait for each echo. */
async function exchange(ws: WebSocket, n: number, size: number): Promise<void> {
  let got = 0;
  const done = new Promise<void>((resolve) => ws.on('message', () => { if (++got === n) resolve(); }));
  for (let i = 0; i < n; i++) ws.send(Buffer.alloc(size, 1));
  await done;
}

/** GET /metrics on the admin listener. */
async function scrape(): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${gw.gateway.admin!.address!.port}/metrics`);
  assert.equal(r.status, 200);
  return r.text();
}

function promtoolCheck(text: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('a scrape under traffic passes promtool check metrics and counts that traffic', { timeout: 30_000 }, async () => {
  const clients = await Promise.all([openEcho(), openEcho(), openEcho()]);
  // A refused handshake too (wrong origin), so the refusal series exist.
  const refused = new WebSocket(gw.url('/locked'), { origin: 'https://evil.example' });
  await once(refused, 'error');
  // Scrape while the clients are still exchanging messages.
  const traffic = Promise.all(clients.map((ws) => exchange(ws, 50, 100)));
  const during = await scrape();
  await traffic;
  const text = await scrape();

  for (const scrape of [during, text]) {
    const r = promtoolCheck(scrape);
    assert.equal(r.status, 0, `promtool check metrics:\n${r.output}`);
  }
  const value = (series: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    assert.ok(line, `series ${series} in the scrape`);
    return Number(line.split(' ')[1]);
  };
  assert.equal(value('gatehouse_messages_total{service="echo",direction="in"}'), 150, 'messages from clients');
  assert.equal(value('gatehouse_messages_total{service="echo",direction="out"}'), 150, 'messages to clients');
  assert.equal(value('gatehouse_bytes_total{service="echo",direction="in"}'), 15_000, 'payload bytes from clients');
  assert.equal(value('gatehouse_connections_open{service="echo",transport="websocket"}'), 3, 'open connections');
  assert.equal(value('gatehouse_handshakes_total{service="echo",transport="websocket",outcome="accepted",reason=""}'), 3);
  assert.equal(value('gatehouse_handshakes_total{service="locked",transport="websocket",outcome="refused",reason="origin_not_allowed"}'), 1);
  assert.ok(value('gatehouse_handshake_duration_seconds_count{service="echo",transport="websocket"}') >= 3, 'handshake durations observed');
  assert.match(text, /^# TYPE nodejs_eventloop_lag_seconds gauge$/m, 'event-loop metrics included');

  await Promise.all(clients.map(async (ws) => { ws.close(1000); await once(ws, 'close'); }));
  await waitFor(() => gw.gateway.metrics.get('gatehouse_closes_total', { service: 'echo', code: '1000', closed_by: 'client' }) === 3, 'three closes counted');
  assert.equal(gw.gateway.metrics.get('gatehouse_connections_open', { service: 'echo' }), 0, 'no connection left open');
});

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the alert rules in docs/operations.md pass promtool check rules and name metrics the gateway exports', { timeout: 30_000 }, async () => {
  const doc = readFileSync(join(import.meta.dirname, '../../../docs/operations.md'), 'utf8');
  const rules = /```yaml\n(groups:[\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(rules, 'the rules block');
  const dir = mkdtempSync(join(tmpdir(), 'gh-rules-'));
  writeFileSync(join(dir, 'rules.yml'), rules);
  const r = spawnSync(PROMTOOL, ['check', 'rules', join(dir, 'rules.yml')], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  const exported = await scrape();
  for (const name of new Set(rules.match(/\b(gatehouse|nodejs)_[a-z_0-9]+/g))) {
    assert.match(exported, new RegExp(`^# TYPE ${name.replace(/_(count|sum|bucket)$/, '')} `, 'm'), `${name} is exported`);
  }
});
