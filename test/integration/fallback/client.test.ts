/**
 * The client library in Node against real fallback endpoints: the WebSocket
 * API, falling back by itself, resuming broken requests without loss,
 * duplication or reordering, close codes both ways, backpressure.
 */
import { getEventListeners } from 'node:events';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket as NodeWebSocket } from 'ws';
import { startHarness, type Harness } from './harness.js';
import { GatehouseSocket, type GatehouseCloseEvent, type GatehouseMessageEvent } from '../../../client/src/index.js';
import { originKeys, TEST_LIMITS } from './stand-in-checks.js';
import { ALLOWED } from './raw.js';

let h: Harness;
before(async () => {
  h = await startHarness({
    limits: TEST_LIMITS,
    // Node clients send no Origin; the page origin is there for the binding test.
    services: { echo: { path: '/echo', type: 'echo', ...originKeys({ origins: [ALLOWED], allowMissing: true }) } },
    fallback: { heartbeat: '1s', poll_timeout: '2s', high_water_mark: '16KiB', response_limit: '32KiB' },
  });
});
after(async () => { await h.stop(); });

const wsUrl = (): string => `ws://127.0.0.1:${h.port}/echo`;

function opened(s: GatehouseSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.addEventListener('open', () => resolve(), { once: true });
    s.addEventListener('close', (e) => reject(new Error(`closed ${(e as GatehouseCloseEvent).code} before open`)), { once: true });
  });
}
function closed(s: GatehouseSocket): Promise<GatehouseCloseEvent> {
  return new Promise((resolve) => s.addEventListener('close', (e) => resolve(e as GatehouseCloseEvent), { once: true }));
}
function messages(s: GatehouseSocket, count: number): Promise<unknown[]> {
  const got: unknown[] = [];
  return new Promise((resolve) => {
    const on = (e: Event): void => {
      got.push((e as GatehouseMessageEvent).data);
      if (got.length === count) { s.removeEventListener('message', on); resolve(got); }
    };
    s.addEventListener('message', on);
  });
}

test('forced fallback: the WebSocket API with text, binary (arraybuffer and blob) and a clean close', async () => {
  const s = new GatehouseSocket(wsUrl(), [], { transport: 'fallback' });
  assert.equal(s.readyState, GatehouseSocket.CONNECTING);
  assert.throws(() => s.send('too early'), { name: 'InvalidStateError' });
  let onopen = 0;
  s.onopen = () => { onopen++; };
  await opened(s);
  assert.equal(onopen, 1);
  assert.equal(s.readyState, s.OPEN);
  assert.equal(s.transport, 'fallback');
  assert.equal(s.fallbackMode, 'stream');
  assert.equal(s.protocol, '');
  assert.equal(s.extensions, '');
  s.binaryType = 'arraybuffer';
  const three = messages(s, 3);
  s.send('héllo ✓');
  s.send(new Uint8Array([0, 1, 2, 255]));
  s.send(new Uint8Array([9, 8, 7]).buffer);
  const [text, bin, ab] = await three;
  assert.equal(text, 'héllo ✓');
  assert.deepEqual([...new Uint8Array(bin as ArrayBuffer)], [0, 1, 2, 255]);
  assert.deepEqual([...new Uint8Array(ab as ArrayBuffer)], [9, 8, 7]);
  s.binaryType = 'blob';
  const blobP = messages(s, 1);
  s.send(new Blob([new Uint8Array([42, 43])]));
  const [blob] = await blobP;
  assert.ok(blob instanceof Blob);
  assert.deepEqual([...new Uint8Array(await (blob as Blob).arrayBuffer())], [42, 43]);
  assert.throws(() => s.close(1001), { name: 'InvalidAccessError' });
  assert.throws(() => s.close(1000, 'x'.repeat(124)), { name: 'SyntaxError' });
  const channel = h.channels.at(-1)!;
  const serverClosed = new Promise<number>((resolve) => channel.attach({ onClose: (info) => resolve(info.code) }));
  const done = closed(s);
  s.close(4001, 'bye now');
  assert.equal(s.readyState, s.CLOSING);
  const ev = await done;
  assert.deepEqual([ev.code, ev.reason, ev.wasClean], [4001, 'bye now', true]);
  assert.equal(s.readyState, s.CLOSED);
  assert.equal(await serverClosed, 4001);
});

test('auto: when the WebSocket upgrade does not get through, it falls back by itself', async () => {
  // This server has no upgrade handler: the upgrade fails as it does behind a proxy that strips it.
  const s = new GatehouseSocket(wsUrl(), ['chat'], { WebSocket: NodeWebSocket as never });
  await opened(s);
  assert.equal(s.transport, 'fallback');
  const echoed = messages(s, 1);
  s.send('through the fallback');
  assert.deepEqual(await echoed, ['through the fallback']);
  s.close();
  assert.equal((await closed(s)).code, 1000);
});

test('the gateway closing a session reaches the client with its code and reason', async () => {
  const s = new GatehouseSocket(wsUrl(), [], { transport: 'fallback' });
  await opened(s);
  const channel = h.channels.at(-1)!;
  const serverSide = new Promise<{ code: number; wasClean: boolean }>((resolve) => channel.attach({ onClose: (i) => resolve(i) }));
  const done = closed(s);
  channel.close(4400, 'kicked');
  const ev = await done;
  assert.deepEqual([ev.code, ev.reason, ev.wasClean], [4400, 'kicked', true]);
  const info = await serverSide;
  assert.deepEqual([info.code, info.wasClean], [4400, true]);
});

test('a refused open fires error then close 1006, never open', async () => {
  const s = new GatehouseSocket(`ws://127.0.0.1:${h.port}/nowhere`, [], { transport: 'fallback' });
  let opens = 0;
  const events: string[] = [];
  s.onopen = () => { opens++; };
  s.onerror = () => { events.push('error'); };
  const ev = await closed(s);
  events.push('close');
  assert.equal(opens, 0);
  assert.deepEqual(events, ['error', 'close']);
  assert.equal(ev.code, 1006);
  assert.equal(ev.wasClean, false);
});

test('backpressure: a paused session holds the client\'s batch; send() → false and drain on the gateway side', async () => {
  const s = new GatehouseSocket(wsUrl(), [], { transport: 'fallback' });
  await opened(s);
  const channel = h.channels.at(-1)!;
  const received: string[] = [];
  let drained = 0;
  channel.attach({ onMessage: (d) => received.push(d.toString()), onDrain: () => { drained++; } });
  channel.pause();
  s.send('held');
  // Wait for the batch to reach the session (held there while paused), not for a fixed time.
  const session = channel as unknown as { inboundBytes: number };
  for (let i = 0; i < 500 && session.inboundBytes === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(session.inboundBytes > 0, 'the batch reached the gateway');
  assert.deepEqual(received, [], 'and is not delivered while paused');
  assert.ok(s.bufferedAmount > 0, 'unacknowledged while paused');
  channel.resume();
  while (received.length === 0) await new Promise((r) => setImmediate(r));
  assert.deepEqual(received, ['held']);
  let full = false;
  for (let i = 0; i < 10; i++) if (!channel.send(Buffer.alloc(4096), true)) full = true;
  assert.ok(full, 'send() reports full above the high-water mark');
  await messages(s, 10);
  while (drained === 0) await new Promise((r) => setTimeout(r, 10));
  assert.ok(channel.bufferedAmount < 16 * 1024);
  s.close();
  await closed(s);
});

/**
 * A fetch that breaks things the way networks do: every downstream stream is
 * cut after `cutAfter` bytes, and every 5th upstream POST loses its response
 * after the gateway has processed it (so the client must retry a delivered batch).
 */
function flakyFetch(cutAfter: number): { fetch: typeof fetch; cuts: () => number; lost: () => number } {
  let cuts = 0;
  let lost = 0;
  let posts = 0;
  const flaky: typeof fetch = async (input, init) => {
    const url = String(input);
    const res = await fetch(input, init);
    if (url.includes("gh=send") && ++posts % 3 === 0) {
      await res.arrayBuffer();
      lost++;
      throw new TypeError('fetch failed (response lost)');
    }
    if (!url.includes('gh=stream') || !res.body) return res;
    const reader = res.body.getReader();
    let seen = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        const { value, done } = await reader.read();
        if (done) { ctl.close(); return; }
        if (seen + value.length > cutAfter) {
          ctl.enqueue(value.subarray(0, Math.max(0, cutAfter - seen)));
          cuts++;
          void reader.cancel();
          ctl.error(new TypeError('network error (stream cut)'));
          return;
        }
        seen += value.length;
        ctl.enqueue(value);
      },
      cancel() { void reader.cancel(); },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
  return { fetch: flaky, cuts: () => cuts, lost: () => lost };
}

test('10,000 messages each way arrive complete and in order while streams break and responses get lost', async () => {
  const net = flakyFetch(20_000);
  const s = new GatehouseSocket(wsUrl(), [], { transport: 'fallback', fetch: net.fetch });
  await opened(s);
  const N = 10_000;
  const all = messages(s, N);
  for (let i = 0; i < N; i++) s.send(i % 3 === 0 ? new Uint8Array([i & 0xff, (i >> 8) & 0xff]) : `message ${i}`);
  s.binaryType = 'arraybuffer';
  const got = await all;
  for (let i = 0; i < N; i++) {
    if (i % 3 === 0) assert.deepEqual([...new Uint8Array(got[i] as ArrayBuffer)], [i & 0xff, (i >> 8) & 0xff], `message ${i}`);
    else assert.equal(got[i], `message ${i}`);
  }
  assert.ok(net.cuts() > 3, `streams were cut (${net.cuts()})`);
  assert.ok(net.lost() > 3, `responses were lost (${net.lost()})`);
  assert.equal(s.bufferedAmount, 0);
  s.close();
  await closed(s);
});

test('a long session leaves no pile of listeners on one AbortSignal (Node\'s fetch drops its own only at garbage collection)', { timeout: 60_000 }, async () => {
  let most = 0;
  const counting = (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    if (init?.signal) most = Math.max(most, getEventListeners(init.signal, 'abort').length);
    return fetch(url, init);
  };
  const s = new GatehouseSocket(wsUrl(), [], { transport: 'fallback', fetch: counting });
  await opened(s);
  for (let i = 0; i < 300; i++) {
    const echoed = messages(s, 1);
    s.send(`m${i}`);
    assert.deepEqual(await echoed, [`m${i}`]);
  }
  assert.ok(most < 5, `at most a few abort listeners on any request's signal (saw ${most})`);
  const done = closed(s);
  s.close();
  assert.equal((await done).code, 1000);
});

test('long-polling carries the same traffic', async () => {
  const s = new GatehouseSocket(wsUrl(), [], { transport: 'fallback', poll: true });
  await opened(s);
  assert.equal(s.fallbackMode, 'poll');
  const N = 500;
  const all = messages(s, N);
  for (let i = 0; i < N; i++) s.send(`p${i}`);
  assert.deepEqual(await all, Array.from({ length: N }, (_, i) => `p${i}`));
  s.close();
  await closed(s);
});

test('a session is bound to the Origin it was opened with, whatever else the pipeline admits', async () => {
  const { RawSession, openSession, EVIL } = await import('./raw.js');
  const base = h.url('/echo');
  const { sid } = await openSession(base, { Origin: ALLOWED });
  const s = new RawSession(base, sid!, { Origin: ALLOWED });
  for (const headers of [{ Origin: EVIL }, {}, { Origin: "null" }] as Array<Record<string, string>>) {
    const { res } = await s.poll(headers);
    assert.equal(res.status, 403, JSON.stringify(headers));
  }
  assert.equal(await s.echo('mine'), 'mine');
  const { sid: none } = await openSession(base, {});
  const anonymous = new RawSession(base, none!, {});
  assert.equal((await anonymous.poll({ Origin: ALLOWED })).res.status, 403);
  assert.equal(await anonymous.echo('no origin'), 'no origin');
});
