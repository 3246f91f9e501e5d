/**
 * An honest client on a slow path: its upstream POST is re-sent while the
 * first attempt is still reaching the gateway (a proxy, or the client itself
 * after a timeout). The gateway answers the overlapping re-send with 409
 * (one upload at a time per session); the client must send the same numbers
 * again, never skip past what the gateway has not received — a skip is a
 * sequence gap, which the gateway rightly closes with 1002.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { startHarness, type Harness } from './harness.js';
import { GatehouseSocket, type GatehouseCloseEvent, type GatehouseMessageEvent } from '../../../client/src/index.js';
import { originKeys, TEST_LIMITS } from './stand-in-checks.js';
import { ALLOWED, RawSession, frames, openSession } from './raw.js';
import { FrameType } from '../../../src/fallback/wire.js';
import type { FallbackSession } from '../../../src/fallback/session.js';

let h: Harness;
// connections_per_address is also the cap on a client address's requests still showing their session's key.
const CROWDED_LIMIT = 3;
let crowded: Harness;
before(async () => {
  crowded = await startHarness({
    limits: { ...TEST_LIMITS, connections_per_address: CROWDED_LIMIT },
    services: { echo: { path: '/echo', type: 'echo', ...originKeys({ origins: [ALLOWED], allowMissing: true }) } },
    fallback: { heartbeat: '1s', poll_timeout: '2s' },
  });
  h = await startHarness({
    limits: TEST_LIMITS,
    // Node clients send no Origin.
    services: { echo: { path: '/echo', type: 'echo', ...originKeys({ origins: [ALLOWED], allowMissing: true }) } },
    fallback: { heartbeat: '1s', poll_timeout: '2s' },
  });
});
after(async () => { await h.stop(); await crowded.stop(); });

const TEXT = 0x01;

/** True when a send body carries a TEXT frame (a batch of messages, not an acknowledgement or a probe). */
function carriesText(body: Uint8Array): boolean {
  for (let off = 0; off + 5 <= body.length;) {
    if (body[off] === TEXT) return true;
    off += 5 + ((body[off + 1] << 24) >>> 0) + (body[off + 2] << 16) + (body[off + 3] << 8) + body[off + 4];
  }
  return false;
}

function sendRequests(): number {
  return h.metrics.fallbackRequests.series({ op: 'send' }).value;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/**
 * A fetch whose first upstream batch is held on its way: the gateway gets the
 * request's head and all its body but the last byte, and is still reading it
 * when the client is told the request failed (as a proxy's or the client's own
 * timeout would). Everything else passes through. `answered(n)` settles once
 * the gateway has answered `n` later batches (the re-sends).
 */
function holdingFetch(): { fetch: typeof fetch; answered: (n: number) => Promise<number[]>; held: () => { socket: Socket; lastByte: Uint8Array } } {
  let held: { socket: Socket; lastByte: Uint8Array } | undefined;
  const statuses: number[] = [];
  const waiters: Array<() => void> = [];
  const holding: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const body = init?.body as Uint8Array | undefined;
    const isBatch = url.searchParams.get('gh') === 'send' && body !== undefined && carriesText(body);
    if (isBatch && !held) {
      const socket = connect(h.port, '127.0.0.1');
      await once(socket, 'connect');
      const before = sendRequests();
      held = { socket, lastByte: body.subarray(body.length - 1) };
      socket.on('error', () => undefined);
      socket.write(Buffer.concat([
        Buffer.from(`POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: 127.0.0.1:${h.port}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ${body.length}\r\n\r\n`),
        body.subarray(0, body.length - 1),
      ]));
      // The gateway has the head and the session key: it is receiving this body now.
      await until(() => sendRequests() > before, 'the gateway to take the held request');
      await new Promise((r) => setImmediate(r));
      throw new TypeError('fetch failed (the request timed out on its way)');
    }
    const res = await fetch(input, init);
    if (isBatch) {
      statuses.push(res.status);
      // (after the client has read the answer)
      setImmediate(() => { for (const w of waiters.splice(0)) w(); });
    }
    return res;
  };
  const answered = async (n: number): Promise<number[]> => {
    while (statuses.length < n) await new Promise<void>((r) => waiters.push(r));
    return statuses.slice();
  };
  return { fetch: holding, answered, held: () => held! };
}

function opened(s: GatehouseSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.addEventListener('open', () => resolve(), { once: true });
    s.addEventListener('close', (e) => reject(new Error(`closed ${(e as GatehouseCloseEvent).code} before open`)), { once: true });
  });
}

/** The next `count` messages, or the close that came first (as an error naming its code and reason). */
function messagesOrClose(s: GatehouseSocket, count: number): Promise<unknown[]> {
  const got: unknown[] = [];
  return new Promise((resolve, reject) => {
    s.addEventListener('message', (e) => {
      got.push((e as GatehouseMessageEvent).data);
      if (got.length === count) resolve(got);
    });
    s.addEventListener('close', (e) => {
      const c = e as GatehouseCloseEvent;
      reject(new Error(`closed ${c.code} "${c.reason}" after ${JSON.stringify(got)}`));
    }, { once: true });
  });
}

function auditReasons(): unknown[] {
  return h.lines.map((l) => l.reason);
}

for (const firstAttempt of ['dies on its way', 'reaches the gateway after the re-send'] as const) {
  test(`a batch re-sent while its first attempt is still arriving (which then ${firstAttempt}): nothing lost, nothing twice, no close`, { timeout: 30_000 }, async () => {
    const net = holdingFetch();
    const s = new GatehouseSocket(`ws://127.0.0.1:${h.port}/echo`, [], { transport: 'fallback', fetch: net.fetch, streamDelay: 0 });
    await opened(s);
    const echoes = messagesOrClose(s, 3);
    echoes.catch(() => undefined);
    s.send('m1');
    // The re-send met the first attempt while the gateway was still receiving it.
    const [resend] = await net.answered(1);
    assert.equal(resend, 409, 'the re-send met the first attempt still being received');
    const { socket, lastByte } = net.held();
    if (firstAttempt === 'dies on its way') {
      socket.destroy();
      s.send('m2');
      s.send('m3');
    } else {
      s.send('m2');
      s.send('m3');
      await net.answered(2);
      socket.write(lastByte);
      socket.resume();
    }
    assert.deepEqual(await echoes, ['m1', 'm2', 'm3'], 'each message echoed once, in order');
    assert.ok(!auditReasons().includes('fallback_sequence_gap'), 'no sequence gap audited');
    const done = new Promise<GatehouseCloseEvent>((resolve) => s.addEventListener('close', (e) => resolve(e as GatehouseCloseEvent), { once: true }));
    s.close(1000, 'done');
    const ev = await done;
    assert.equal(ev.code, 1000, `clean close, got ${ev.code} ${ev.reason}`);
    assert.equal(ev.wasClean, true);
    socket.destroy();
  });
}

/** The messages of a stream response as they arrive, numbered as a client numbers them (from the stream's SEQ). */
async function* streamMessages(res: Response): AsyncGenerator<{ n: number; text: string }> {
  const reader = res.body!.getReader();
  let buf = Buffer.alloc(0);
  let next = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf = Buffer.concat([buf, value]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const type = buf[0];
      const payload = buf.subarray(5, 5 + buf.readUInt32BE(1));
      buf = buf.subarray(5 + payload.length);
      if (type === FrameType.SEQ) next = payload.readUIntBE(0, 6);
      else if (type === FrameType.TEXT) yield { n: next++, text: payload.toString() };
    }
  }
}

test('a stream that takes over while messages wait for the old one\'s write carries every message, numbered right', { timeout: 30_000 }, async () => {
  const base = h.url('/echo');
  const { sid } = await openSession(base, {});
  const raw = new RawSession(base, sid!, {});
  const session = h.channels.at(-1) as FallbackSession;
  const first = await raw.request('stream', undefined, {}, '&a=0');
  assert.equal(first.status, 200);
  // A new stream request (the client gave up on the first: a timeout, a cut) arrives in the same
  // turn of the event loop as messages from the service, one before it and one after it.
  const attach = session.attachDownstream.bind(session);
  session.attachDownstream = (res, mode) => {
    session.send('a', false);
    const ok = attach(res, mode);
    session.send('b', false);
    return ok;
  };
  const second = await raw.request('stream', undefined, {}, '&a=0');
  assert.equal(second.status, 200);
  session.attachDownstream = attach;
  void first.body?.cancel();
  const got: Array<{ n: number; text: string }> = [];
  const messages = streamMessages(second);
  while (got.length < 3) {
    const { value, done } = await messages.next();
    if (done) break;
    got.push(value);
    if (got.length === 1) { session.send('c', false); session.send('d', false); }
  }
  assert.deepEqual(got, [{ n: 1, text: 'a' }, { n: 2, text: 'b' }, { n: 3, text: 'c' }],
    'each message on the new stream once, under its own number');
  assert.deepEqual((await messages.next()).value, { n: 4, text: 'd' });
  session.close(1000, 'done');
});

/**
 * A fetch whose first downstream request (stream or poll) finds its address
 * crowded: CROWDED_LIMIT other requests from 127.0.0.1 are still sending the
 * head of their body, so the gateway refuses this one with 429 ("not now",
 * Retry-After). They go away once the client has its answer.
 */
function crowdingFetch(): { fetch: typeof fetch; statuses: number[] } {
  let done = false;
  const statuses: number[] = [];
  const crowding: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const op = url.searchParams.get('gh');
    if (done || (op !== 'stream' && op !== 'poll')) return fetch(input, init);
    done = true;
    const requests = (): number => crowded.metrics.fallbackRequests.series({ op }).value;
    const before = requests();
    const stalled: Socket[] = [];
    for (let i = 0; i < CROWDED_LIMIT; i++) {
      const socket = connect(crowded.port, '127.0.0.1');
      socket.on('error', () => undefined);
      await once(socket, 'connect');
      socket.write(`POST ${url.pathname}${url.search} HTTP/1.1\r\nHost: 127.0.0.1:${crowded.port}\r\nContent-Length: 64\r\n\r\n`);
      stalled.push(socket);
    }
    await until(() => requests() >= before + CROWDED_LIMIT, 'the gateway to count the stalled requests');
    const res = await fetch(input, init);
    statuses.push(res.status);
    for (const socket of stalled) socket.destroy();
    return res;
  };
  return { fetch: crowding, statuses };
}

for (const mode of ['stream', 'poll'] as const) {
  test(`a ${mode} request refused 429 (its address's requests crowd the gateway for a moment) is tried again: the session goes on`, { timeout: 30_000 }, async () => {
    const net = crowdingFetch();
    const s = new GatehouseSocket(`ws://127.0.0.1:${crowded.port}/echo`, [], { transport: 'fallback', fetch: net.fetch, poll: mode === 'poll', streamDelay: 0 });
    await opened(s);
    const echoes = messagesOrClose(s, 2);
    echoes.catch(() => undefined);
    s.send('m1');
    s.send('m2');
    assert.deepEqual(await echoes, ['m1', 'm2'], 'both messages echoed, the session still open');
    assert.deepEqual(net.statuses, [429], `the first ${mode} request was refused for its address's crowd`);
    assert.ok(crowded.lines.some((l) => l.reason === 'fallback_too_many_requests'), 'the refusal was audited');
    const done = new Promise<GatehouseCloseEvent>((resolve) => s.addEventListener('close', (e) => resolve(e as GatehouseCloseEvent), { once: true }));
    s.close(1000, 'done');
    assert.equal((await done).code, 1000, 'closed cleanly, not by the refusal');
  });
}

test('a batch re-sent while its first attempt is held by a paused session is answered after it, not before: no acknowledgement runs ahead of the backpressure', { timeout: 30_000 }, async () => {
  const base = h.url('/echo');
  const { sid } = await openSession(base, {});
  const raw = new RawSession(base, sid!, {});
  const session = h.channels.at(-1) as FallbackSession;
  const held = session as unknown as { pendingUps: number };
  session.pause();
  const first = raw.send(['x1', 'x2']);
  await until(() => held.pendingUps === 1 && session.acknowledged === 2, 'the first attempt to be held by the session');
  // The client lost the first attempt's answer (a proxy timed out) and sends the batch again.
  raw.nextOut = 1;
  const again = raw.send(['x1', 'x2']);
  await until(() => held.pendingUps === 2, 'the re-send to be held behind the first attempt');
  session.resume();
  for (const res of [await first, await again]) {
    assert.equal(res.status, 200, 'both attempts answered once the session resumed');
    const acks = [...frames(Buffer.from(await res.arrayBuffer()))].flatMap((f) => (f.type === FrameType.ACK ? [f.value] : []));
    assert.deepEqual(acks, [2], 'each answer acknowledges the batch, delivered by then');
  }
  const { messages } = await raw.poll();
  assert.deepEqual(messages.map((m) => ('payload' in m ? String(m.payload) : `frame ${m.type}`)), ['x1', 'x2'], 'each message delivered (and echoed) once');
  session.close(1000, 'done');
});

test('a batch whose first attempt stays on its way for longer than retryTimeout is sent again until the gateway takes it: 409 is an answer, not a lost gateway', { timeout: 30_000 }, async () => {
  const RETRY_TIMEOUT = 1000;
  const net = holdingFetch();
  const s = new GatehouseSocket(`ws://127.0.0.1:${h.port}/echo`, [], { transport: 'fallback', fetch: net.fetch, streamDelay: 0, retryTimeout: RETRY_TIMEOUT });
  await opened(s);
  const echoes = messagesOrClose(s, 1);
  echoes.catch(() => undefined);
  s.send('m1');
  const closedFirst = echoes.then(() => { throw new Error('echoed while the first attempt was held'); });
  closedFirst.catch(() => undefined);
  const started = Date.now();
  let statuses = await Promise.race([net.answered(1), closedFirst]);
  // The re-sends meet the held first attempt for longer than retryTimeout (the gateway's request_timeout is 30 s).
  while (Date.now() - started < RETRY_TIMEOUT * 1.5) statuses = await Promise.race([net.answered(statuses.length + 1), closedFirst]);
  assert.ok(statuses.every((status) => status === 409), `every re-send met the held attempt: ${statuses.join(' ')}`);
  const { socket, lastByte } = net.held();
  socket.write(lastByte);
  socket.resume();
  assert.deepEqual(await echoes, ['m1'], 'echoed once the first attempt arrived');
  const done = new Promise<GatehouseCloseEvent>((resolve) => s.addEventListener('close', (e) => resolve(e as GatehouseCloseEvent), { once: true }));
  s.close(1000, 'done');
  assert.equal((await done).code, 1000, 'closed cleanly');
  socket.destroy();
});
