/**
 * The request head, line by line: Host syntax (400), the request line (414)
 * and single header lines (431) have limits of their own under the total
 * `header_bytes`, and a listener that names its `hosts` answers no other
 * (421). Upgrades and plain HTTP requests (the fallback) are screened alike.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Canary } from './canary.js';
import { rawExchange, startDoor, upgradeRequest, type Door } from './harness.js';

let door: Door;
let named: Door;
let canary: Canary;

before(async () => {
  door = await startDoor({
    listen: [{ port: 0 }],
    services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } },
  });
  named = await startDoor({
    listen: [{ port: 0, hosts: ['gw.example.com', '127.0.0.1'] }],
    services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } },
  });
  canary = await Canary.open(`ws://127.0.0.1:${door.port}/s`);
});
after(async () => {
  canary?.close();
  await door?.stop();
  await named?.stop();
});

/** A plain HTTP request head (what the fallback and the index page get). */
function httpRequest(target: string, headers: Array<[string, string]> = [], host = '127.0.0.1'): string {
  return [`POST ${target} HTTP/1.1`, `Host: ${host}`, 'Content-Length: 0', ...headers.map(([k, v]) => `${k}: ${v}`)].join('\r\n') + '\r\n\r\n';
}

test('a Host that is not host[:port] → 400 bad_host, upgrade and HTTP alike', { timeout: 20_000 }, async () => {
  for (const host of ['bad host/..\\x', 'a@b', 'x/y', 'h:port', '[::1', 'host:123456', '']) {
    const up = await canary.during(rawExchange(door.port, upgradeRequest('/s', [], host)));
    assert.equal(up.status, 400, `upgrade with Host ${JSON.stringify(host)}`);
    const plain = await rawExchange(door.port, httpRequest('/s?gh=open', [], host));
    assert.equal(plain.status, 400, `HTTP request with Host ${JSON.stringify(host)}`);
  }
  assert.ok(await door.audited('bad_host'), 'refusals are audited as bad_host');
  for (const host of ['127.0.0.1:80', 'gw.example.com', '[::1]:8080', 'a-b.c_d.example']) {
    const ok = await rawExchange(door.port, upgradeRequest('/s', [], host), { waitClose: false });
    assert.equal(ok.status, 101, `well-formed Host ${host}`);
  }
});

test('a request line over request_line_bytes (8 KiB) → 414; one at the limit passes', { timeout: 20_000 }, async () => {
  const longQuery = `/s?q=${'a'.repeat(10 * 1024)}`;
  const res = await canary.during(rawExchange(door.port, upgradeRequest(longQuery)));
  assert.equal(res.status, 414, 'a 10 KiB query string');
  assert.ok(await door.audited('request_line_too_large'), 'audited as request_line_too_large');
  assert.equal((await rawExchange(door.port, httpRequest(longQuery))).status, 414, 'the same on a plain request');
  // "GET " + target + " HTTP/1.1" = 8192 bytes exactly.
  const atLimit = `/s?q=${'a'.repeat(8192 - 'GET  HTTP/1.1'.length - '/s?q='.length)}`;
  assert.equal((await rawExchange(door.port, upgradeRequest(atLimit), { waitClose: false })).status, 101, 'a request line of exactly 8 KiB');
  assert.equal((await rawExchange(door.port, upgradeRequest(`${atLimit}a`))).status, 414, 'one byte more');
});

test('one header line over header_line_bytes (8 KiB) → 431, although the head is under header_bytes', { timeout: 20_000 }, async () => {
  const res = await canary.during(rawExchange(door.port, upgradeRequest('/s', [['X-Big', 'v'.repeat(12 * 1024)]])));
  assert.equal(res.status, 431, 'a single 12 KiB header line');
  assert.ok(await door.audited('header_line_too_large'), 'audited as header_line_too_large');
  assert.equal((await rawExchange(door.port, httpRequest('/s?gh=open', [['Cookie', 'c'.repeat(12 * 1024)]]))).status, 431, 'on a plain request too');
  // "X-Big: " + value = 8192 bytes exactly.
  const value = 'v'.repeat(8192 - 'X-Big: '.length);
  assert.equal((await rawExchange(door.port, upgradeRequest('/s', [['X-Big', value]]), { waitClose: false })).status, 101, 'a line of exactly 8 KiB');
  assert.equal((await rawExchange(door.port, upgradeRequest('/s', [['X-Big', `${value}v`]]))).status, 431, 'one byte more');
});

test('a listener with hosts answers only those names (421 unknown_host otherwise)', { timeout: 20_000 }, async () => {
  assert.equal((await rawExchange(named.port, upgradeRequest('/s', [], 'evil.example'))).status, 421, 'a Host the listener does not name');
  assert.equal((await rawExchange(named.port, httpRequest('/', [], 'rebound.example:8080'))).status, 421, 'a plain request for another host');
  assert.ok(await named.audited('unknown_host'), 'audited as unknown_host');
  assert.equal((await rawExchange(named.port, upgradeRequest('/s', [], 'GW.example.com.'), { waitClose: false })).status, 101, 'case and a trailing dot do not matter');
  assert.equal((await rawExchange(named.port, upgradeRequest('/s', [], '127.0.0.1:9'), { waitClose: false })).status, 101, 'nor does the port');
});
