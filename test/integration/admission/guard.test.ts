/**
 * In-connection guards through the real gateway: message-rate and byte-rate
 * limits, the outbound queue cap and a client that never reads — each closes
 * 1008 with an audit line and counter, while a canary keeps echoing.
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

/** Answer the server's Close (as a client must), then expect TCP to end. */
async function finishClose(c: RawClient, code: number): Promise<void> {
  await c.sendFrame({ opcode: 8, payload: closePayload(code) });
  await c.expectClosed(3000);
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

test('message rate: past rate × burst → close 1008 "rate limit", audited', async () => {
  const c = await open('/chatty');
  const frames = Buffer.concat(Array.from({ length: 40 }, (_, i) => c.frame({ opcode: 1, payload: `m${i}` })));
  await c.write(frames);
  const close = await canary.during(c.readClose(3000));
  assert.deepEqual([close.code, close.reason], [1008, 'rate limit']);
  const line = await door.audited('rate_limit');
  assert.equal(line?.service, 'chatty');
  assert.equal(line?.code, 1008);
  assert.equal(door.metrics.get('gatehouse_violations_total', { reason: 'rate_limit' }), 1);
  await finishClose(c, 1008);
});

test('message rate: a client within the rate is never closed', async () => {
  const c = await open('/chatty');
  for (let i = 0; i < 15; i++) {
    await c.sendFrame({ opcode: 1, payload: `ok${i}` });
    const f = await c.readFrame();
    assert.equal(f.payload.toString(), `ok${i}`);
  }
  c.destroy();
});

test('byte rate: one large message passes, the next one within the second closes 1008', async () => {
  const c = await open('/bulky');
  await c.sendFrame({ opcode: 2, payload: Buffer.alloc(10 * 1024, 1) });
  const echoed = await c.readFrame();
  assert.equal(echoed.payload.length, 10 * 1024);
  await c.sendFrame({ opcode: 2, payload: Buffer.alloc(100, 1) });
  const close = await c.readClose();
  assert.deepEqual([close.code, close.reason], [1008, 'rate limit']);
  await finishClose(c, 1008);
  await canary.roundTrip();
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
