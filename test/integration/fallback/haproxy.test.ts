/**
 * The client library's fallback behind a real HAProxy 2.6 (Debian) in
 * `mode http`. With HAProxy's defaults every write of an unfinished response
 * (a stream) is sent with MSG_MORE, which the kernel holds back for up to
 * 200 ms: each one-in-flight message waited that long. The client's probe
 * (PING answered by PONG on the stream) sees the stream trail the answers and
 * switches to long-polling, whose responses are complete and pass at once.
 * With `option http-no-delay` (the line docs/fallback.md recommends) the
 * stream is not delayed and stays.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { startHaproxy, type Haproxy } from '../../helpers/haproxy.js';
import { GatehouseSocket, type GatehouseCloseEvent, type GatehouseMessageEvent } from '../../../client/src/index.js';

let gw: TestGateway;
const proxies: Haproxy[] = [];

before(async () => {
  gw = await startGateway({
    // One message in flight at a time reaches a few hundred per second: the per-connection
    // message rate is set here, not left to its default.
    limits: { message_rate: 10_000, handshake_rate: 1000, handshake_burst: 1000 },
    services: { echo: { path: '/echo', type: 'echo', origins: ['https://app.test'], allow_missing_origin: true } },
  });
});
after(async () => {
  for (const p of proxies) await p.stop();
  await gw.stop();
});

async function proxy(options: string[]): Promise<Haproxy> {
  const p = await startHaproxy([{ port: gw.port }], { options });
  proxies.push(p);
  return p;
}

/** Opens a fallback socket and exchanges `count` messages one at a time; resolves with what came back. */
async function exchange(url: string, count: number): Promise<{ socket: GatehouseSocket; got: string[] }> {
  const socket = new GatehouseSocket(url, [], { transport: 'fallback' });
  let closed: GatehouseCloseEvent | undefined;
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onclose = (e) => reject(new Error(`closed ${e.code} before open`));
  });
  socket.onclose = (e) => { closed = e; };
  const got: string[] = [];
  for (let i = 0; i < count; i++) {
    const reply = new Promise<string>((resolve, reject) => {
      socket.onmessage = (e: GatehouseMessageEvent) => resolve(e.data as string);
      socket.onclose = (e) => { closed = e; reject(new Error(`closed ${e.code} ${e.reason} after ${i} messages`)); };
    });
    socket.send(`m${i}`);
    got.push(await reply);
  }
  assert.equal(closed, undefined, 'the session stays open');
  return { socket, got };
}

function expected(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `m${i}`);
}

for (const [name, options] of [['defaults (keep-alive)', []], ['option http-server-close', ['option http-server-close']]] as const) {
  test(`HAProxy ${name}: the client sees its stream held back and long-polls; 100 one-in-flight messages come back in order`, { timeout: 40_000 }, async () => {
    const p = await proxy([...options]);
    // (a hundred show the order and the mode; how fast they go is the benchmarks' business: at load ~30 a long-polled one took ~100 ms)
    const { socket, got } = await exchange(p.url('/echo'), 100);
    assert.deepEqual(got, expected(100), 'every message back, once, in order');
    assert.equal(socket.transport, 'fallback');
    assert.equal(socket.fallbackMode, 'poll', 'a stream that HAProxy corks is given up for long-polling');
    socket.close();
  });
}

test('HAProxy with option http-no-delay: the stream is not held back and stays', { timeout: 40_000 }, async () => {
  const p = await proxy(['option http-no-delay']);
  const { socket, got } = await exchange(p.url('/echo'), 100);
  assert.deepEqual(got, expected(100));
  assert.equal(socket.fallbackMode, 'stream', 'an undelayed stream is kept');
  socket.close();
});

test('directly: the stream stays', { timeout: 20_000 }, async () => {
  const { socket, got } = await exchange(gw.url('/echo'), 100);
  assert.deepEqual(got, expected(100));
  assert.equal(socket.fallbackMode, 'stream');
  socket.close();
});
