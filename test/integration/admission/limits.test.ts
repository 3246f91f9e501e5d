/**
 * Request-head limits and connection limits under flood, each with a canary
 * connection (from another loopback address) that keeps echoing throughout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { Canary } from './canary.js';
import { rawExchange, startDoor, upgradeRequest, type Door } from './harness.js';

const ORIGIN = 'https://app.example.com';
let door: Door;
let canary: Canary;

before(async () => {
  door = await startDoor({
    listen: [{ port: 0 }],
    limits: { header_timeout: '400ms', handshake_rate: 5, handshake_burst: 10, connections_per_address: 20 },
    services: { app: { path: '/ws', type: 'echo', origins: [ORIGIN] } },
  });
  canary = await Canary.open(`ws://127.0.0.1:${door.port}/ws`, { origin: ORIGIN });
});

after(async () => {
  canary.close();
  await door.stop();
});

test('20 KiB of headers → 431, audited; canary unaffected', async () => {
  const res = await canary.during(rawExchange(door.port, upgradeRequest('/ws', [['Origin', ORIGIN], ['Cookie', 'a'.repeat(20 * 1024)]])));
  assert.equal(res.status, 431);
  assert.equal(res.closed, true);
  assert.ok(await door.audited('headers_too_large'));
  assert.ok(door.metrics.get('gatehouse_rejections_total', { reason: 'headers_too_large' }) >= 1);
});

test('2,000 headers → 431 (refused, never truncated), audited; canary unaffected', async () => {
  // ~2,000 distinct two-character names (the shape of the CVE-2024-37890 PoC); short
  // lines keep this under the byte limit, so the count is what is refused.
  const chars = 'abcdefghijklmnopqrstuvwxyz0123456789-_!#$%&*+.^|~';
  const many: Array<[string, string]> = [];
  for (const a of chars) for (const b of chars) if (many.length < 2000) many.push([a + b, '1']);
  const text = upgradeRequest('/ws', [...many, ['Origin', ORIGIN]]).replace(/: 1\r\n/g, ':1\r\n');
  assert.ok(Buffer.byteLength(text) < 16 * 1024);
  const res = await canary.during(rawExchange(door.port, text));
  assert.equal(res.status, 431);
  assert.ok(await door.audited('too_many_headers'));
  // 101 headers: over; exactly 100 (with the ones upgradeRequest adds) still fine.
  const over = await rawExchange(door.port, upgradeRequest('/ws', [...many.slice(0, 95), ['Origin', ORIGIN]]));
  assert.equal(over.status, 431);
  const atLimit = await rawExchange(door.port, upgradeRequest('/ws', [...many.slice(0, 94), ['Origin', ORIGIN]]), { waitClose: false });
  assert.equal(atLimit.status, 101);
});

test('200 slowloris sockets are cut at the header timeout (408); new clients still served', async () => {
  const sockets: Socket[] = [];
  const closed: Array<Promise<string>> = [];
  for (let i = 0; i < 200; i++) {
    const s = connect(door.port, '127.0.0.1');
    s.setEncoding('latin1');
    let got = '';
    s.on('data', (d: string) => { got += d; });
    s.on('error', () => { /* close follows */ });
    closed.push(once(s, 'close').then(() => got));
    s.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    sockets.push(s);
  }
  // Trickle a header byte now and then, as slowloris does.
  const trickle = setInterval(() => { for (const s of sockets) if (!s.destroyed) s.write('X'); }, 100);
  try {
    const responses = await canary.during(Promise.all(closed));
    for (const r of responses) assert.ok(r === '' || /^HTTP\/1\.1 408/.test(r), `408 or drop, got ${JSON.stringify(r.slice(0, 40))}`);
    assert.ok(responses.some((r) => r.startsWith('HTTP/1.1 408')), 'at least some got 408');
  } finally {
    clearInterval(trickle);
  }
  assert.ok(await door.audited('header_timeout'));
  assert.ok(door.metrics.get('gatehouse_rejections_total', { reason: 'header_timeout' }) >= 150);
});

test('handshake flood from one address → 429 + Retry-After past the burst; canary (other address) unaffected', async () => {
  const flood = Promise.all(Array.from({ length: 40 }, () => rawExchange(door.port, upgradeRequest('/ws', [['Origin', 'https://evil.example']]))));
  const results = await canary.during(flood);
  const limited = results.filter((r) => r.status === 429);
  assert.ok(limited.length >= 25, `most of the flood is rate limited (${limited.length})`);
  assert.ok(results.every((r) => r.status === 429 || r.status === 403));
  assert.match(limited[0].headers['retry-after'] ?? '', /^\d+$/);
  assert.ok(await door.audited('handshake_rate'));
});

test('handshake buckets refill on the monotonic clock: a wall-clock step back does not freeze them', { timeout: 20_000 }, async () => {
  const stepped = await startDoor({
    listen: [{ port: 0 }],
    // 2/s: a token takes 500 ms to come back, so the second handshake right after the first finds the bucket empty even on a busy machine.
    limits: { handshake_rate: 2, handshake_burst: 1 },
    services: { s: { path: '/s', type: 'echo', allow_missing_origin: true } },
  });
  const realNow = Date.now;
  try {
    assert.equal((await rawExchange(stepped.port, upgradeRequest('/s'), { waitClose: false })).status, 101, 'the one token of the burst');
    assert.equal((await rawExchange(stepped.port, upgradeRequest('/s'))).status, 429, 'the bucket is empty');
    // The system clock steps back an hour (NTP, an operator): a bucket on Date.now would not refill for an hour.
    const offset = realNow() - 3_600_000 - realNow();
    Date.now = () => realNow() + offset;
    let status = 0;
    for (let i = 0; i < 40 && status !== 101; i++) {
      // One token takes 500 ms at 2/s: wait for it, a tick at a time.
      await new Promise((r) => setTimeout(r, 50));
      status = (await rawExchange(stepped.port, upgradeRequest('/s'), { waitClose: false })).status;
    }
    assert.equal(status, 101, 'a token came back within 2 s of a wall-clock step back');
    const refusal = await stepped.audited('handshake_rate');
    assert.match(String(refusal?.detail), /limits\.handshake_rate = 2\/s/, 'the refusal names the key to change');
  } finally {
    Date.now = realNow;
    await stepped.stop();
  }
});
