/**
 * Memory follows the clients active now, not every address ever seen: after
 * 249 client addresses (127.0.0.2–250; Linux routes all of 127/8 to lo) came
 * over WebSocket and the fallback, some with a wrong password, and went, every
 * per-address map — connection counts, handshake buckets, failure windows of
 * addresses and of user names, per-connection rate state, fallback sessions
 * and fallback requests not yet bound to a slot — is back to its size before,
 * once the map's own expiry has passed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { cheapPasswordHash } from '../../helpers/test-password-hash.js';
import { MemorySharedState } from '../../../src/shared-state/memory.js';
import { encodeClose, encodeKey, encodeNumber, FrameType } from '../../../src/fallback/wire.js';
import { closed, connect, roundTrip } from '../auth/common.js';

const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
const RIGHT = basic('alice', 'alice-pw');
const WRONG = basic('alice', 'not-alice-pw');

let gw: TestGateway;
const shared = new MemorySharedState();

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-address-state-'));
  writeFileSync(join(dir, 'users'), `alice:${cheapPasswordHash('alice-pw')}\n`);
  gw = await startGateway({
    // A full bucket is swept away: at 1000/s one is full again 1 ms after its last handshake.
    limits: { handshake_rate: 1000, handshake_burst: 10 },
    auth: { failures: { per_address: 10, per_user: 10, window: '1s' } },
    services: {
      app: { path: '/app', type: 'echo', allow_missing_origin: true, auth: { methods: [{ type: 'basic', realm: 'r', users_file: join(dir, 'users') }] } },
    },
  }, process.env, { shared });
});
after(async () => { await gw.stop(); });

/** The size of every map kept per client address (or per connection or session of one). */
function sizes(): Record<string, number> {
  const g = gw.gateway;
  return {
    connectionCounts: shared.connections.size,
    handshakeBuckets: shared.handshakes.size,
    addressFailures: shared.addressFailures.size,
    userFailures: shared.userFailures.size,
    rateStates: g.guard.size,
    channels: g.front.openChannels,
    fallbackSessions: g.fallback.sessionCount,
    fallbackUnbound: g.fallback.unboundAddresses,
  };
}

/** A POST from `localAddress` on a connection of its own. */
function post(path: string, headers: Record<string, string>, body: Buffer, localAddress: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: gw.port, path, method: 'POST', localAddress, agent: false, headers: { 'Content-Type': 'text/plain', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function overWebSocket(localAddress: string, authorization: string): Promise<void> {
  const o = await connect(gw.url('/app'), { headers: { authorization }, localAddress });
  if (authorization === WRONG) {
    assert.equal(o.kind === 'refused' && o.status, 401, `${localAddress}: a wrong password is refused`);
    return;
  }
  assert.equal(o.kind, 'open', `${localAddress}: admitted`);
  if (o.kind !== 'open') return;
  assert.equal(await roundTrip(o.ws, localAddress), localAddress);
  const end = closed(o.ws);
  o.ws.close(1000);
  await end;
}

async function overFallback(localAddress: string, authorization: string): Promise<void> {
  const opened = await post('/app?gh=open', { authorization }, Buffer.from('{"protocols":[]}'), localAddress);
  if (authorization === WRONG) {
    assert.equal(opened.status, 401, `${localAddress}: a wrong password is refused on the fallback too`);
    return;
  }
  assert.equal(opened.status, 200, `${localAddress}: fallback session opened`);
  const { session, key } = JSON.parse(opened.body.toString('utf8')) as { session: string; key: string };
  const close = Buffer.concat([encodeKey(Buffer.from(key, 'base64url')), encodeNumber(FrameType.SEQ, 1), encodeClose(1000, 'bye')]);
  const sent = await post(`/app?gh=send&s=${session}`, { authorization }, close, localAddress);
  assert.equal(sent.status, 200, `${localAddress}: the close is answered`);
}

/** One admitted WebSocket connection from 127.0.0.1, come and gone (released by the gateway too); true when released. */
async function localClient(): Promise<boolean> {
  await overWebSocket('127.0.0.1', RIGHT);
  return until(() => { const s = sizes(); return s.connectionCounts === 0 && s.rateStates === 0 && s.channels === 0; });
}

test('per-address maps are back to their size after 249 addresses came and went (WebSocket, fallback, wrong passwords)', { timeout: 120_000 }, async () => {
  assert.ok(await localClient(), 'the first connection is released');
  const before = sizes();

  const addresses = Array.from({ length: 249 }, (_, i) => `127.0.0.${i + 2}`);
  const kinds = [
    (a: string) => overWebSocket(a, RIGHT),
    (a: string) => overWebSocket(a, WRONG),
    (a: string) => overFallback(a, RIGHT),
    (a: string) => overFallback(a, WRONG),
  ];
  // 25 clients at a time, each of its own address and kind.
  for (let i = 0; i < addresses.length; i += 25) {
    await Promise.all(addresses.slice(i, i + 25).map((a, j) => kinds[(i + j) % kinds.length](a)));
  }
  const during = sizes();
  assert.ok(during.handshakeBuckets > before.handshakeBuckets, `buckets were kept for the new addresses (${JSON.stringify(during)})`);
  // (Failure windows of the first addresses may be over and forgotten already.)
  assert.ok(during.addressFailures > 0 && during.userFailures > 0, `wrong passwords were counted (${JSON.stringify(during)})`);
  const refusals = gw.auditReasons().filter((r) => r === 'basic_invalid').length;
  assert.equal(refusals, addresses.filter((_, i) => i % 2 === 1).length, 'every wrong password was checked and audited (none blocked)');

  // Expiry: failure windows (1 s) and full buckets are forgotten on use — the
  // buckets at most every 10 s — so a client from the first address keeps coming.
  let now = sizes();
  const back = await until(async () => {
    assert.ok(await localClient(), 'the connection from 127.0.0.1 is released');
    now = sizes();
    return Object.keys(before).every((k) => now[k] === before[k]);
  }, 60_000);
  assert.ok(back, `every per-address map back to its size before: before ${JSON.stringify(before)}, now ${JSON.stringify(now)}`);
});

/** Polls `check` every 100 ms until it holds or `ms` pass; true when it held. */
async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}
