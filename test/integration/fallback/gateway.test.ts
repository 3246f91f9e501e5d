/**
 * The fallback inside the real gateway: same URL as the WebSocket endpoint,
 * the same admission verdicts on both transports, the client library's
 * automatic choice, the served client bundle and demo page, and drain.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket as NodeWebSocket } from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { installStandInChecks, originKeys, ORIGIN_REFUSALS, TEST_LIMITS } from './stand-in-checks.js';
import { ALLOWED, EVIL, openSession, RawSession } from './raw.js';
import { GatehouseSocket, type GatehouseCloseEvent } from '../../../client/src/index.js';
import { buildClient } from '../../helpers/client-bundle.js';
import type { FallbackSession } from '../../../src/fallback/session.js';

installStandInChecks({ origins: [ALLOWED], users: { 'Bearer t-alice': { id: 'alice' }, 'cookie:sid=alice': { id: 'alice' } } });

let gw: TestGateway;
before(async () => {
  await buildClient();
  gw = await startGateway({
    limits: TEST_LIMITS,
    services: {
      echo: { path: '/echo', type: 'echo', ...originKeys({ origins: [ALLOWED] }) },
      small: { path: '/small', type: 'echo', max_message: '1KiB', ...originKeys({ origins: [ALLOWED] }) },
      single: { path: '/single', type: 'echo', max_connections: 1, ...originKeys({ origins: [ALLOWED] }) },
    },
  });
});
after(async () => { await gw.stop(); });

/** The status a WebSocket handshake gets with these headers (ws reports it on 'unexpected-response'). */
function upgradeStatus(headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new NodeWebSocket(gw.url('/echo'), { headers, origin: headers.Origin });
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); res.resume(); ws.terminate(); });
    ws.on('open', () => { resolve(101); ws.close(); });
    ws.on('error', (err) => { if (!/Unexpected server response/.test(err.message)) reject(err); });
  });
}

test('the open request gets exactly the verdict the WebSocket upgrade gets', async () => {
  const cases: Array<[Record<string, string>, number]> = [
    [{ Origin: ALLOWED, Authorization: 'Bearer t-alice' }, 200],
    [{ Origin: ALLOWED, Cookie: 'sid=alice' }, 200],
    [{ Origin: ALLOWED }, 401],
    [{ Origin: ALLOWED, Authorization: 'Bearer wrong' }, 401],
    [{ Origin: EVIL, Cookie: 'sid=alice' }, 403],
    [{ Origin: 'null', Cookie: 'sid=alice' }, 403],
    [{ Cookie: 'sid=alice' }, 403],
  ];
  for (const [headers, fallbackStatus] of cases) {
    const ws = await upgradeStatus(headers);
    const { res } = await openSession(gw.httpUrl('/echo'), headers);
    assert.equal(res.status, fallbackStatus, JSON.stringify(headers));
    assert.equal(ws, fallbackStatus === 200 ? 101 : fallbackStatus, `websocket ${JSON.stringify(headers)}`);
    if (fallbackStatus === 401) assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="gatehouse"');
  }
  const reasons = gw.logs.filter((l) => l.audit && ORIGIN_REFUSALS.includes(l.reason as string)).map((l) => l.transport);
  assert.ok(reasons.includes('websocket') && reasons.includes('fallback'), 'both transports audited');
  assert.ok(!gw.logText().includes('t-alice'), 'no credentials in the log');
});

test('the client uses WebSocket when it gets through, and the fallback when forced; same service, same echo', async () => {
  const headers = { Origin: ALLOWED, Cookie: 'sid=alice' };
  for (const transport of ['auto', 'fallback'] as const) {
    const s = new GatehouseSocket(gw.url('/echo'), [], { transport, WebSocket: NodeWebSocket as never, headers });
    await new Promise<void>((resolve, reject) => { s.onopen = () => resolve(); s.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
    assert.equal(s.transport, transport === 'auto' ? 'websocket' : 'fallback');
    const echoed = new Promise<unknown>((resolve) => { s.onmessage = (e) => resolve(e.data); });
    s.send(`over ${s.transport}`);
    assert.equal(await echoed, `over ${s.transport}`);
    const closed = new Promise<GatehouseCloseEvent>((resolve) => { s.onclose = (e) => resolve(e); });
    s.close(1000, 'done');
    const ev = await closed;
    assert.deepEqual([ev.code, ev.wasClean], [1000, true]);
  }
});

test('parity inside a session: a message over max_message closes both transports with 1009', async () => {
  const headers = { Origin: ALLOWED, Cookie: 'sid=alice' };
  for (const transport of ['websocket', 'fallback'] as const) {
    const s = new GatehouseSocket(gw.url('/small'), [], { transport, WebSocket: NodeWebSocket as never, headers });
    await new Promise<void>((resolve, reject) => { s.onopen = () => resolve(); s.onclose = (e) => reject(new Error(`closed ${e.code}`)); });
    const closed = new Promise<GatehouseCloseEvent>((resolve) => { s.onclose = (e) => resolve(e); });
    s.send('x'.repeat(1025));
    const ev = await closed;
    assert.equal(ev.code, 1009, transport);
  }
  const reasons = gw.logs.filter((l) => l.audit && l.code === 1009).map((l) => l.transport ?? 'websocket');
  assert.ok(reasons.includes('fallback') && reasons.includes('websocket'), `audited on both: ${reasons}`);
});

test('a changed cookie re-checks the credential, not the door: the session holding a max_connections: 1 service goes on', async () => {
  const { res, sid } = await openSession(gw.httpUrl('/single'), { Origin: ALLOWED, Cookie: 'sid=alice' });
  assert.equal(res.status, 200);
  const session = new RawSession(gw.httpUrl('/single'), sid!, { Origin: ALLOWED, Cookie: 'sid=alice' });
  // An unrelated cookie the page set since: the same principal, and no new connection (it used to get 503 service_full).
  session.headers = { Origin: ALLOWED, Cookie: 'sid=alice; theme=dark' };
  assert.equal(await session.echo('still here'), 'still here');
  const other = await openSession(gw.httpUrl('/single'), { Origin: ALLOWED, Cookie: 'sid=alice' });
  assert.equal(other.res.status, 503, 'the slot is still the session\'s: a second open is refused');
  // The credential itself is still checked: none → 401 with its challenge, and nothing delivered.
  const none = await session.poll({ Origin: ALLOWED });
  assert.equal(none.res.status, 401);
  assert.equal(await session.echo('and again'), 'and again');
});

test('a changed credential that is refused is audited once, by the pipeline that refused it', async () => {
  const { res, sid } = await openSession(gw.httpUrl('/echo'), { Origin: ALLOWED, Cookie: 'sid=alice' });
  assert.equal(res.status, 200);
  const session = new RawSession(gw.httpUrl('/echo'), sid!, { Origin: ALLOWED, Cookie: 'sid=alice' });
  for (const [headers, reason] of [
    [{ Origin: ALLOWED, Authorization: 'Bearer wrong' }, 'invalid_credentials'],
    [{ Origin: ALLOWED }, 'missing_credentials'],
  ] as const) {
    const before = gw.logs.length;
    const refused = await session.poll(headers);
    assert.equal(refused.res.status, 401, JSON.stringify(headers));
    // (the audit line is written before the answer: it is in the log by now)
    const audited = gw.logs.slice(before).filter((l) => l.audit).map((l) => l.reason);
    assert.deepEqual(audited, [reason], `${JSON.stringify(headers)}: exactly one audit line`);
  }
  assert.equal(await session.echo('unharmed'), 'unharmed');
});

test('the gateway serves the client bundle, its ESM build and the demo page', async () => {
  const bundle = await fetch(gw.httpUrl('/.gatehouse/client.js'));
  assert.equal(bundle.status, 200);
  assert.match(bundle.headers.get('content-type') ?? '', /javascript/);
  assert.equal(bundle.headers.get('x-content-type-options'), 'nosniff');
  assert.match(await bundle.text(), /GatehouseSocket/);
  const esm = await fetch(gw.httpUrl('/.gatehouse/client.mjs'));
  assert.match(await esm.text(), /export\s*\{/);
  const demo = await fetch(gw.httpUrl('/.gatehouse/demo'));
  assert.equal(demo.status, 200);
  assert.match(demo.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  assert.match(await demo.text(), /force the HTTP fallback/);
  const other = await fetch(gw.httpUrl('/.gatehouse/nope'));
  assert.equal(other.status, 404);
  await other.arrayBuffer();
});

test('drain closes fallback sessions with 1001 like WebSocket connections', async () => {
  const own = await startGateway({ services: { echo: { path: '/echo', type: 'echo', ...originKeys({ origins: [ALLOWED] }) } } });
  const s = new GatehouseSocket(own.url('/echo'), [], { transport: 'fallback', headers: { Origin: ALLOWED, Cookie: 'sid=alice' } });
  await new Promise<void>((resolve) => { s.onopen = () => resolve(); });
  // One round trip: the downstream stream is connected (the CLOSE travels on it).
  const echoed = new Promise<void>((resolve) => { s.onmessage = () => resolve(); });
  s.send('ready?');
  await echoed;
  assert.equal(own.gateway.front.openChannels, 1);
  assert.equal(own.gateway.guard.size, 1, 'the session is guarded like a WebSocket connection');
  const closed = new Promise<GatehouseCloseEvent>((resolve) => { s.onclose = (e) => resolve(e); });
  await own.stop(1000);
  const ev = await closed;
  assert.equal(ev.code, 1001);
  assert.equal(own.gateway.front.openChannels, 0);
  // The front door's end hook ran for the session: the guard let go of it.
  assert.equal(own.gateway.guard.size, 0);
});

test('drain ends once the sessions are closed: a client that got its 1001 does not hold it for close_timeout', { timeout: 20_000 }, async () => {
  for (const mode of ['stream', 'poll'] as const) {
    // close_timeout, session_timeout and the drain's own deadline far past this test's:
    // only the session's close can end the drain in time (it used to wait for close_timeout).
    const own = await startGateway({
      fallback: { close_timeout: '120s', session_timeout: '120s' },
      services: { echo: { path: '/echo', type: 'echo', ...originKeys({ origins: [ALLOWED] }) } },
    });
    const s = new GatehouseSocket(own.url('/echo'), [], { transport: 'fallback', poll: mode === 'poll', headers: { Origin: ALLOWED, Cookie: 'sid=alice' } });
    await new Promise<void>((resolve) => { s.onopen = () => resolve(); });
    const echoed = new Promise<void>((resolve) => { s.onmessage = () => resolve(); });
    s.send('ready?');
    await echoed;
    // The CLOSE travels on the session's downstream request: wait until one is attached.
    const [session] = [...own.gateway.front.channelSet] as unknown as FallbackSession[];
    while (session.downstream !== mode) await new Promise((r) => setTimeout(r, 10));
    const closed = new Promise<GatehouseCloseEvent>((resolve) => { s.onclose = (e) => resolve(e); });
    await own.stop(120_000);
    assert.equal((await closed).code, 1001, `${mode}: the client got the 1001`);
    assert.equal(own.gateway.front.openChannels, 0, mode);
  }
});
