/**
 * Issue 6, point 2 — security equal to WebSocket — rule by rule, over real
 * HTTP against the real pipeline and endpoints. Every bad request checks the
 * status, an audit line with its reason, and that a canary session still works.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { startHarness, type Harness } from './harness.js';
import { installStandInChecks, originKeys, ORIGIN_REFUSALS, REAL_ORIGIN_CHECK, TEST_LIMITS } from './stand-in-checks.js';
import { ALLOWED, EVIL, RawSession, frames, keyed, openSession, rememberKey } from './raw.js';
import { encodeMessage, encodeNumber, FrameType } from '../../../src/fallback/wire.js';
import type { FallbackSession } from '../../../src/fallback/session.js';

installStandInChecks({
  origins: [ALLOWED],
  users: { 'Bearer t-alice': { id: 'alice' }, 'Bearer t-bob': { id: 'bob' }, 'cookie:sid=alice': { id: 'alice' }, 'cookie:sid=alice2': { id: 'alice' } },
});

let h: Harness;
let base: string;
let canary: RawSession;
const ALICE = { Origin: ALLOWED, Authorization: 'Bearer t-alice' };

before(async () => {
  h = await startHarness({
    limits: TEST_LIMITS,
    services: {
      echo: { path: '/echo', type: 'echo', max_message: '16KiB', ...originKeys({ origins: [ALLOWED], subprotocols: ['chat.v1'] }) },
      other: { path: '/other', type: 'echo', ...originKeys({ origins: [ALLOWED] }) },
      wsonly: { path: '/wsonly', type: 'echo', fallback: false, ...originKeys({ origins: [ALLOWED] }) },
    },
    fallback: { session_timeout: '3s', poll_timeout: '1s', heartbeat: '500ms', max_body: '64KiB', max_buffer: '128KiB', high_water_mark: '16KiB', request_timeout: '1s' },
  // Without the admission module the endpoints get the stand-in policy; with it, the service's `origins`.
  }, REAL_ORIGIN_CHECK ? {} : { originPolicy: (_svc, origin) => origin === ALLOWED });
  base = h.url('/echo');
  const { sid } = await openSession(base, ALICE);
  canary = new RawSession(base, sid!, ALICE);
  stopCanary = canary.keepAlive(500);
});
after(async () => { stopCanary(); await h.stop(); });
let stopCanary: () => void;

async function newSession(headers: Record<string, string> = ALICE): Promise<RawSession> {
  const { res, sid } = await openSession(base, headers);
  assert.equal(res.status, 200);
  return new RawSession(base, sid!, headers);
}

/** The audit line of a refusal (reason, status), without credentials. */
function audited(reason: string, status?: number): Record<string, unknown> {
  const line = h.lines.find((l) => l.reason === reason && (status === undefined || l.status === status));
  assert.ok(line, `audit line with reason ${reason}`);
  const text = JSON.stringify(line);
  for (const secret of ['t-alice', 't-bob', 'sid=alice']) assert.ok(!text.includes(secret), `audit line carries no ${secret}`);
  return line;
}

async function canaryStillWorks(): Promise<void> {
  assert.equal(await canary.echo('canary'), 'canary');
}

test('open runs the admission pipeline: same statuses and challenge as the WebSocket path', async () => {
  const none = await openSession(base, { Origin: ALLOWED });
  assert.equal(none.res.status, 401);
  assert.equal(none.res.headers.get('www-authenticate'), 'Bearer realm="gatehouse"');
  // The browser client can read the refusal: CORS headers for the allowed origin.
  assert.equal(none.res.headers.get('access-control-allow-origin'), ALLOWED);
  audited('missing_credentials', 401);

  const wrong = await openSession(base, { Origin: ALLOWED, Authorization: 'Bearer nope' });
  assert.equal(wrong.res.status, 401);
  audited('invalid_credentials', 401);

  const evil = await openSession(base, { Origin: EVIL, Authorization: 'Bearer t-alice' });
  assert.equal(evil.res.status, 403);
  assert.equal(evil.res.headers.get('access-control-allow-origin'), null);
  assert.ok(h.lines.some((l) => ORIGIN_REFUSALS.includes(l.reason as string) && l.status === 403), 'origin refusal audited');

  const ok = await openSession(base, ALICE, ['x.unknown', 'chat.v1']);
  assert.equal(ok.res.status, 200);
  assert.equal(ok.answer!.protocol, 'chat.v1');
  assert.equal(h.channels.at(-1)!.transport, 'fallback');
  assert.equal(h.channels.at(-1)!.admission?.principal?.id, 'alice');
  await canaryStillWorks();
});

test('a service with fallback: false has no fallback endpoints', async () => {
  const res = await fetch(`${h.url('/wsonly')}?gh=open`, { method: 'POST', headers: ALICE, body: '{}' });
  assert.equal(res.status, 426);
  await res.arrayBuffer();
});

test('every request checks Origin: another, absent, null or malformed origin → 403, session unharmed', async () => {
  const s = await newSession();
  const before = h.lines.length;
  for (const origin of [EVIL, undefined, 'null', 'https://app.example.evil.net', 'https://app.example/path']) {
    const headers: Record<string, string> = { Authorization: 'Bearer t-alice' };
    if (origin) headers.Origin = origin;
    const poll = await s.poll(headers);
    assert.equal(poll.res.status, 403, `poll from ${origin}`);
    assert.equal(poll.res.headers.get('access-control-allow-origin'), null);
    const send = await s.request('send', Buffer.concat([encodeNumber(FrameType.SEQ, 1), encodeMessage(Buffer.from('x'), false)]), headers);
    assert.equal(send.status, 403, `send from ${origin}`);
    await send.arrayBuffer();
  }
  assert.ok(h.lines.slice(before).filter((l) => l.reason === 'fallback_origin_mismatch').length >= 10);
  audited('fallback_origin_mismatch', 403);
  // The forged requests delivered nothing and the session goes on.
  assert.equal(await s.echo('still mine'), 'still mine');
  await canaryStillWorks();
});

test('CORS: exact echo of an allowed origin with credentials and Vary: Origin, never *; preflights', async () => {
  const s = await newSession();
  const poll = await s.poll();
  assert.equal(poll.res.headers.get('access-control-allow-origin'), ALLOWED);
  assert.equal(poll.res.headers.get('access-control-allow-credentials'), 'true');
  assert.match(poll.res.headers.get('vary') ?? '', /\bOrigin\b/);

  const pre = await fetch(base, { method: 'OPTIONS', headers: { Origin: ALLOWED, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), ALLOWED);
  assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
  assert.match(pre.headers.get('access-control-allow-headers') ?? '', /Authorization/);
  for (const origin of [EVIL, 'null', 'https://app.example.evil.net']) {
    const bad = await fetch(base, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST' } });
    assert.equal(bad.status, 403, `preflight from ${origin}`);
    assert.equal(bad.headers.get('access-control-allow-origin'), null);
    await bad.arrayBuffer();
  }
  audited('fallback_preflight_origin', 403);
  for (const l of h.lines) assert.notEqual(l['access-control-allow-origin'], '*');
  await canaryStillWorks();
});

test('session ids are server-generated, 192 random bits, and unique', async () => {
  const ids = new Set<string>();
  for (let i = 0; i < 20; i++) ids.add((await newSession()).sid);
  assert.equal(ids.size, 20);
  for (const id of ids) {
    assert.match(id, /^[A-Za-z0-9_-]{32}$/);
    assert.equal(Buffer.from(id, 'base64url').length, 24);
  }
});

test('a session presented with other credentials → 403; without credentials → 401 with the challenge', async () => {
  const s = await newSession();
  const bob = await s.poll({ Origin: ALLOWED, Authorization: 'Bearer t-bob' });
  assert.equal(bob.res.status, 403);
  audited('fallback_principal_mismatch', 403);
  const bobSend = await s.send(['from bob'], { Origin: ALLOWED, Authorization: 'Bearer t-bob' });
  assert.equal(bobSend.status, 403);
  await bobSend.arrayBuffer();
  const none = await s.poll({ Origin: ALLOWED });
  assert.equal(none.res.status, 401);
  assert.equal(none.res.headers.get('www-authenticate'), 'Bearer realm="gatehouse"');
  // The same principal with a different credential (a refreshed cookie) is the same session owner.
  const cookieSession = await newSession({ Origin: ALLOWED, Cookie: 'sid=alice' });
  cookieSession.headers = { Origin: ALLOWED, Cookie: 'sid=alice2; theme=dark' };
  // Nothing from bob was delivered: the next message the echo returns is ours.
  s.nextOut -= 1;
  assert.equal(await s.echo('alice again'), 'alice again');
  assert.equal(await cookieSession.echo('refreshed'), 'refreshed');
  await canaryStillWorks();
});

test('unknown, malformed, foreign-service and expired session ids: 404 / 400', async () => {
  const unknown = await new RawSession(base, 'A'.repeat(32), ALICE).poll();
  assert.equal(unknown.res.status, 404);
  audited('fallback_unknown_session', 404);
  const malformed = await new RawSession(base, 'short', ALICE).poll();
  assert.equal(malformed.res.status, 400);
  audited('fallback_bad_session_id', 400);
  const s = await newSession();
  const foreign = await new RawSession(h.url('/other'), s.sid, ALICE).poll();
  assert.equal(foreign.res.status, 404);
  // Expired: no request for session_timeout (3 s) → reaped, backend link closed.
  const idle = await newSession();
  const channel = h.channels.at(-1)!;
  const closed = new Promise<number>((resolve) => {
    const timer = setInterval(() => { if (channel.closed) { clearInterval(timer); resolve(Date.now()); } }, 50);
  });
  await closed;
  const gone = await idle.poll();
  assert.equal(gone.res.status, 404);
  await canaryStillWorks();
});

test('request bodies are capped: 413 from Content-Length or from the bytes, session closed 1009', async () => {
  const s = await newSession();
  const big = Buffer.alloc(65 * 1024, 0x61);
  const declared = await rawPost(`${base}?gh=send&s=${s.sid}`, ALICE, keyed(s.sid, big), false);
  assert.equal(declared, 413);
  audited('fallback_body_too_big', 413);
  const closing = await s.receive(1);
  assert.equal(closing[0].type, FrameType.CLOSE);
  assert.equal((closing[0] as { code: number }).code, 1009);

  const chunked = await newSession();
  assert.equal(await rawPost(`${base}?gh=send&s=${chunked.sid}`, ALICE, keyed(chunked.sid, big), true), 413);
  await canaryStillWorks();
});

test('a body that never ends → 408 at the request timeout, answered and closed', async () => {
  const s = await newSession();
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${base}?gh=send&s=${s.sid}`, { method: 'POST', headers: ALICE }, (res) => { res.resume(); resolve(res.statusCode ?? 0); });
    req.on('error', reject);
    req.write(keyed(s.sid, encodeNumber(FrameType.SEQ, 1))); // …and nothing more, never the end
  });
  assert.equal(status, 408);
  audited('fallback_body_timeout', 408);
  await canaryStillWorks();
});

test('a message over max_message → 413 and close 1009, as the WebSocket path would close', async () => {
  const s = await newSession();
  const res = await s.send([Buffer.alloc(16 * 1024 + 1)]);
  assert.equal(res.status, 413);
  await res.arrayBuffer();
  audited('fallback_message_too_big', 413);
  const [close] = await s.receive(1);
  assert.deepEqual([close.type, (close as { code: number }).code], [FrameType.CLOSE, 1009]);
  await canaryStillWorks();
});

test('invalid UTF-8 → 400 and close 1007; malformed frames and sequence gaps → 400 and close 1002', async () => {
  const utf8 = await newSession();
  const res = await utf8.request('send', Buffer.concat([encodeNumber(FrameType.SEQ, 1), Buffer.from([1, 0, 0, 0, 2, 0xc0, 0xaf])]));
  assert.equal(res.status, 400);
  await res.arrayBuffer();
  audited('fallback_invalid_utf8', 400);
  assert.equal(((await utf8.receive(1))[0] as { code: number }).code, 1007);

  const junk = await newSession();
  const r2 = await junk.request('send', Buffer.from([9, 0, 0, 0, 0]));
  assert.equal(r2.status, 400);
  await r2.arrayBuffer();
  audited('fallback_malformed_frame', 400);
  assert.equal(((await junk.receive(1))[0] as { code: number }).code, 1002);

  // A batch that starts past what was received (a broken or hostile client): refused, the session closed 1002.
  const gap = await newSession();
  const r0 = await gap.send(['one']);
  assert.equal(r0.status, 200);
  await r0.arrayBuffer();
  gap.nextOut = 5;
  const r3 = await gap.send(['skipped ahead']);
  assert.equal(r3.status, 400);
  await r3.arrayBuffer();
  audited('fallback_sequence_gap', 400);
  const gapClose = (await gap.receive(2)).map((f) => f.type === FrameType.CLOSE ? (f as { code: number }).code : (f as { payload: Buffer }).payload.toString());
  assert.deepEqual(gapClose, ['one', 1002], 'what came before is delivered, then the session closes 1002');

  const ack = await newSession();
  const r4 = await ack.request('poll', undefined, ALICE, '&a=99');
  assert.equal(r4.status, 400);
  await r4.arrayBuffer();
  audited('fallback_bad_ack', 400);
  await canaryStillWorks();
});

test('a replayed batch is not delivered twice', async () => {
  const s = await newSession();
  const body = Buffer.concat([encodeNumber(FrameType.SEQ, 1), encodeMessage(Buffer.from('once'), false)]);
  for (let i = 0; i < 3; i++) {
    const r = await s.request('send', body);
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  }
  s.nextOut = 2;
  const r = await s.send(['twice?']);
  await r.arrayBuffer();
  const got = await s.receive(2);
  assert.deepEqual(got.map((f) => (f as { payload: Buffer }).payload.toString()), ['once', 'twice?']);
  const extra = await s.poll();
  assert.equal(extra.messages.length, 0);
});

test('a retried batch overlapping what was received delivers only the new messages, acknowledged, no close', async () => {
  const gaps = (): number => h.lines.filter((l) => l.reason === 'fallback_sequence_gap').length;
  const gapsBefore = gaps();
  const s = await newSession();
  const batch = (first: number, texts: string[]): Buffer => Buffer.concat([encodeNumber(FrameType.SEQ, first), ...texts.map((t) => encodeMessage(Buffer.from(t), false))]);
  const acks: number[] = [];
  for (const body of [batch(1, ['a', 'b']), batch(2, ['b', 'c', 'd']), batch(1, ['a']), batch(4, ['d', 'e'])]) {
    const r = await s.request('send', body);
    assert.equal(r.status, 200);
    const ack = frames(Buffer.from(await r.arrayBuffer())).find((f) => f.type === FrameType.ACK) as { value: number } | undefined;
    acks.push(ack?.value ?? -1);
  }
  assert.deepEqual(acks, [2, 4, 4, 5], 'each answer acknowledges everything received so far');
  const got = await s.receive(5);
  assert.deepEqual(got.map((f) => (f as { payload: Buffer }).payload.toString()), ['a', 'b', 'c', 'd', 'e']);
  s.nextOut = 6;
  assert.equal(await s.echo('still open'), 'still open');
  assert.equal(gaps(), gapsBefore, 'no sequence gap audited');
});

test('responses are not cacheable or sniffable, and there is no JSONP, htmlfile or GET transport', async () => {
  const open = await fetch(`${base}?gh=open&callback=alert(1)`, { method: 'POST', headers: ALICE, body: '{}' });
  assert.equal(open.status, 200);
  assert.equal(open.headers.get('content-type'), 'application/json');
  const answer = await open.json() as { session: string; key: string };
  rememberKey(answer);
  const s = new RawSession(base, answer.session, ALICE);
  const responses = [open, (await s.poll()).res, await s.send(['x'])];
  for (const res of responses) {
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('vary') ?? '', /Origin/);
  }
  const get = await fetch(`${base}?gh=poll&s=${s.sid}&c=alert(1)`, { headers: ALICE });
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('cache-control'), 'no-store');
  audited('fallback_method', 405);
  const html = await s.request('htmlfile');
  assert.equal(html.status, 400);
  assert.doesNotMatch(html.headers.get('content-type') ?? '', /html/);
  await canaryStillWorks();
});

test('per-session buffer is capped: a sender past max_buffer gets the session closed 1008', async () => {
  const s = await newSession();
  const channel = h.channels.at(-1)!;
  const chunk = Buffer.alloc(8 * 1024);
  let full = false;
  for (let i = 0; i < 32 && !channel.closed; i++) if (!channel.send(chunk, true)) full = true;
  assert.ok(full, 'send reported full above the high-water mark');
  assert.equal(channel.closed, false); // closing, not yet closed: the client hears the code
  const got = await s.receive(100);
  const close = got.at(-1)!;
  assert.equal(close.type, FrameType.CLOSE);
  assert.equal((close as { code: number }).code, 1008);
  await canaryStillWorks();
});

/** POST with node:http so the body can be sent with Content-Length or chunked, and a 413 read before the body is done. */
function rawPost(url: string, headers: Record<string, string>, body: Buffer, chunked: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, ...(chunked ? {} : { 'Content-Length': body.length }) } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err) => { if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'EPIPE') return; reject(err); });
    if (chunked) { req.write(body.subarray(0, 32 * 1024)); req.write(body.subarray(32 * 1024)); req.end(); } else req.end(body);
  });
}

test('overlapping downstream requests: the newer one takes over, the older is answered at once', async () => {
  const s = await newSession();
  const session = h.channels.at(-1) as FallbackSession;
  const first = s.request('poll', undefined, ALICE, '&a=0');
  // The first poll is parked (nothing to send); the second releases it.
  while (session.downstream !== 'poll') await new Promise((r) => setImmediate(r));
  const second = s.request('poll', undefined, ALICE, '&a=0');
  const r1 = await first;
  assert.equal(r1.status, 200);
  await r1.arrayBuffer();
  const send = await s.send(['after the overlap']);
  await send.arrayBuffer();
  const r2 = await second;
  assert.equal(r2.status, 200);
  const got = frames(Buffer.from(await r2.arrayBuffer())).filter((f) => f.type === FrameType.TEXT);
  assert.deepEqual(got.map((f) => (f as { payload: Buffer }).payload.toString()), ['after the overlap']);
});

test('a stream is rotated at response_limit (128 KiB): it ends with END', async () => {
  const s = await newSession();
  const channel = h.channels.at(-1)!;
  const res = await s.request('stream', undefined, ALICE, '&a=0');
  const reader = res.body!.getReader();
  const body: Buffer[] = [];
  let received = 0;
  let ended = false;
  // Ten 1000-byte messages at a time, acknowledged as a client would, until the gateway ends the stream.
  while (!ended) {
    for (let i = 0; i < 10; i++) channel.send(Buffer.alloc(1000, 0x62), false);
    while (!ended && frames(Buffer.concat(body)).filter((f) => f.type === FrameType.TEXT).length < received + 10) {
      const { value, done } = await reader.read();
      if (done) { ended = true; break; }
      body.push(Buffer.from(value));
      ended = frames(Buffer.concat(body)).some((f) => f.type === FrameType.END);
    }
    received = frames(Buffer.concat(body)).filter((f) => f.type === FrameType.TEXT).length;
    const ack = await s.request('send', encodeNumber(FrameType.ACK, received));
    await ack.arrayBuffer();
  }
  const all = Buffer.concat(body);
  assert.equal(frames(all).at(-1)!.type, FrameType.END);
  assert.ok(all.length >= 128 * 1024 && all.length < 128 * 1024 + 16 * 1024, `rotated at ${all.length} bytes`);
});
