/**
 * In-connection guards through the real gateway: message, byte and control
 * frame rates slow a client down (reading pauses, audited, nothing closed);
 * the outbound queue cap and a client that never reads close 1008 with an
 * audit line and counter — while a canary keeps echoing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { RawClient, closePayload } from '../../helpers/raw-client.js';
import { Canary } from './canary.js';
import { startDoor, type Door } from './harness.js';

/** Rates high enough that only the slow-consumer rules can end the connection. */
const UNLIMITED = { byte_rate: '1GiB', message_rate: 1_000_000 };

let door: Door;
let canary: Canary;

before(async () => {
  door = await startDoor({
    listen: [{ port: 0 }],
    limits: { send_buffer: '64KiB' },
    websocket: { close_timeout: '1s' },
    services: {
      chatty: { path: '/chatty', type: 'echo', allow_missing_origin: true, message_rate: 10 },
      bulky: { path: '/bulky', type: 'echo', allow_missing_origin: true, byte_rate: '4KiB' },
      echo: { path: '/echo', type: 'echo', allow_missing_origin: true },
      firehose: { path: '/firehose', type: 'echo', allow_missing_origin: true, ...UNLIMITED },
    },
  });
  canary = await Canary.open(`ws://127.0.0.1:${door.port}/echo`);
});

after(async () => {
  canary.close();
  await door.stop();
});

async function open(path: string, port = door.port): Promise<RawClient> {
  const c = await RawClient.connect({ port });
  const res = await c.upgrade(path);
  assert.equal(res.status, 101);
  return c;
}

/**
 * Stop reading at the TCP level and keep sending 64 KiB messages, so the echoes
 * pile up toward us. Returns a stop function.
 */
function floodWithoutReading(c: RawClient): () => Promise<void> {
  c.socket.pause();
  const frame = c.frame({ opcode: 2, payload: Buffer.alloc(64 * 1024, 3) });
  let writing = true;
  const writer = (async () => {
    for (let i = 0; i < 400 && writing && !c.socket.destroyed; i++) {
      if (!c.socket.write(frame)) {
        await new Promise<void>((resolve) => {
          const done = (): void => { c.socket.off('drain', done); clearTimeout(timer); resolve(); };
          const timer = setTimeout(done, 50);
          c.socket.once('drain', done);
        });
      }
    }
  })();
  // Stopping also reads again, as a client waking up would: it then sees the end.
  return async () => { writing = false; await writer; c.socket.resume(); };
}

async function auditedEventually(d: Door, reason: string): Promise<Record<string, unknown> | undefined> {
  let found: Record<string, unknown> | undefined;
  for (let i = 0; i < 5 && !found; i++) found = await d.audited(reason);
  return found;
}

/** Read frames until `n` data messages have arrived; returns their payloads and the number of pongs seen. */
async function readMessages(c: RawClient, n: number, timeoutMs = 10_000): Promise<{ texts: string[]; pongs: number }> {
  const texts: string[] = [];
  let pongs = 0;
  while (texts.length < n) {
    const f = await c.readFrame(timeoutMs);
    assert.notEqual(f.opcode, 8, `closed after ${texts.length} messages: ${f.payload.subarray(2).toString()}`);
    if (f.opcode === 0xa) pongs++;
    else texts.push(f.payload.toString());
  }
  return { texts, pongs };
}

test('a client flushing 250 queued messages at once (default 100/s, burst ×2) is slowed down, not closed', { timeout: 20_000 }, async () => {
  const c = await open('/echo');
  await c.write(Buffer.concat(Array.from({ length: 250 }, (_, i) => c.frame({ opcode: 1, payload: `m${i}` }))));
  const { texts } = await canary.during(readMessages(c, 250));
  assert.deepEqual(texts, Array.from({ length: 250 }, (_, i) => `m${i}`), 'every message echoed, in order');
  const line = await door.audited('rate_limited');
  assert.equal(line?.limit, 'message_rate', 'the slow-down is audited with the limit');
  assert.match(String(line?.detail), /limits\.message_rate/, 'the audit line names the key to change');
  assert.ok(door.metrics.get('gatehouse_throttled_total', { limit: 'message_rate' }) >= 1, 'and counted');
  c.destroy();
});

test('message rate: a service override is what the slow-down names', { timeout: 20_000 }, async () => {
  const c = await open('/chatty');
  await c.write(Buffer.concat(Array.from({ length: 25 }, (_, i) => c.frame({ opcode: 1, payload: `c${i}` }))));
  const { texts } = await readMessages(c, 25);
  assert.equal(texts.length, 25, 'all 25 echoed (20 at once, 5 over half a second)');
  const line = door.lines.find((l) => l.reason === 'rate_limited' && l.service === 'chatty');
  assert.match(String(line?.detail), /services\.chatty\.message_rate/, 'the service key is named');
  c.destroy();
});

test('byte rate: one large message passes, the next waits until the bytes are paid back', { timeout: 20_000 }, async () => {
  const c = await open('/bulky');
  await c.sendFrame({ opcode: 2, payload: Buffer.alloc(10 * 1024, 1) });
  await c.sendFrame({ opcode: 2, payload: Buffer.alloc(100, 1) });
  const first = await c.readFrame(10_000);
  assert.equal(first.payload.length, 10 * 1024, 'the large message is echoed');
  const second = await c.readFrame(10_000);
  assert.equal(second.payload.length, 100, 'the next one follows, delayed, not refused');
  const line = door.lines.find((l) => l.reason === 'rate_limited' && l.service === 'bulky');
  assert.equal(line?.limit, 'byte_rate', 'audited as byte_rate');
  assert.match(String(line?.detail), /services\.bulky\.byte_rate/, 'naming the key to change');
  c.destroy();
  await canary.roundTrip();
});

test('ping flood: control frames are metered (control_rate; their bytes count toward byte_rate), one pong per read', { timeout: 30_000 }, async () => {
  const pinged = await startDoor({
    listen: [{ port: 0 }],
    limits: { control_rate: 100 },
    services: {
      echo: { path: '/echo', type: 'echo', allow_missing_origin: true },
      narrow: { path: '/narrow', type: 'echo', allow_missing_origin: true, byte_rate: '2KiB' },
    },
  });
  try {
    const c = await open('/echo', pinged.port);
    const ping = c.frame({ opcode: 9, payload: Buffer.alloc(125, 7) });
    await c.write(Buffer.concat([...Array.from({ length: 300 }, () => ping), c.frame({ opcode: 1, payload: 'after' })]));
    const { texts, pongs } = await readMessages(c, 1);
    assert.deepEqual(texts, ['after'], 'the message behind the flood is delivered');
    assert.ok(pongs < 300, `300 pings were answered by ${pongs} pongs`);
    const line = await pinged.audited('rate_limited');
    assert.equal(line?.limit, 'control_rate', 'the flood is slowed down by control_rate');
    assert.match(String(line?.detail), /limits\.control_rate/, 'naming the key');
    c.destroy();

    // 40 pings of 125 bytes (131 on the wire each) are over 2 KiB/s × 2 even at 100 control frames/s.
    const n = await open('/narrow', pinged.port);
    await n.write(Buffer.concat([...Array.from({ length: 40 }, () => ping), n.frame({ opcode: 1, payload: 'late' })]));
    assert.deepEqual((await readMessages(n, 1)).texts, ['late'], 'delivered once the bytes are paid back');
    const bytes = pinged.lines.find((l) => l.reason === 'rate_limited' && l.service === 'narrow');
    assert.equal(bytes?.limit, 'byte_rate', 'control bytes count toward byte_rate');
    n.destroy();
  } finally {
    await pinged.stop();
  }
});

test('send queue cap: more than send_buffer queued toward a client that stops reading → 1008 "slow consumer"', async () => {
  const before = door.metrics.get('gatehouse_violations_total', { reason: 'slow_consumer' });
  const c = await open('/firehose');
  const stop = floodWithoutReading(c);
  const line = await canary.during(auditedEventually(door, 'slow_consumer'));
  await stop();
  assert.ok(line, 'slow consumer audited');
  assert.equal(line.service, 'firehose');
  assert.match(String(line.detail), /more than 65536 bytes queued/);
  assert.equal(door.metrics.get('gatehouse_violations_total', { reason: 'slow_consumer' }), before + 1);
  // The connection ends: the Close cannot get through, so it is dropped.
  await c.expectClosed(5000);
  await canary.roundTrip();
});

test('a client that never reads while the server sends is closed after the stall timeout', async () => {
  const slow = await startDoor({
    listen: [{ port: 0 }],
    limits: { send_stall_timeout: '500ms' },
    services: { echo: { path: '/echo', type: 'echo', allow_missing_origin: true, ...UNLIMITED } },
  });
  const watcher = await Canary.open(`ws://127.0.0.1:${slow.port}/echo`);
  try {
    const c = await open('/echo', slow.port);
    const stop = floodWithoutReading(c);
    const line = await watcher.during(auditedEventually(slow, 'slow_consumer'));
    await stop();
    assert.ok(line, 'slow consumer audited');
    assert.match(String(line.detail), /no progress for 500 ms/);
    assert.equal(line.code, 1008);
    // The connection is gone (closed, then dropped when the Close cannot get through).
    await c.expectClosed(5000);
    for (let i = 0; i < 100 && slow.gateway.front.openChannels > 1; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(slow.gateway.front.openChannels, 1, 'only the watcher is left');
    assert.equal(slow.gateway.guard.size, 1);
    await watcher.roundTrip();
  } finally {
    watcher.close();
    await slow.stop();
  }
});

test('a guarded connection that closes normally is no longer swept (the front door\'s end hook tells the guard)', async () => {
  const guarded = door.gateway.guard.size;
  const c = await open('/echo');
  for (let i = 0; i < 100 && door.gateway.guard.size === guarded; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(door.gateway.guard.size, guarded + 1);
  await c.sendFrame({ opcode: 8, payload: closePayload(1000) });
  await c.expectClosed(3000);
  for (let i = 0; i < 100 && door.gateway.guard.size > guarded; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(door.gateway.guard.size, guarded);
  await canary.roundTrip();
});
