/**
 * The echo service through the whole gateway, driven by an independent
 * implementation: the `ws` npm client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';

let gw: TestGateway;

before(async () => {
  gw = await startGateway({
    services: {
      echo: { path: '/echo', type: 'echo', max_message: '16MiB', allow_missing_origin: true, message_rate: 100_000 },
    },
  });
});
after(() => gw.stop());

async function open(): Promise<WebSocket> {
  const ws = new WebSocket(gw.url('/echo'), { perMessageDeflate: false, maxPayload: 32 * 1024 * 1024 });
  await once(ws, 'open');
  return ws;
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary }));
    ws.once('close', (code) => reject(new Error(`closed ${code}`)));
  });
}

for (const size of [0, 1, 125, 126, 127, 65535, 65536, 1024 * 1024, 16 * 1024 * 1024]) {
  test(`binary message of ${size} bytes comes back identical`, async () => {
    const ws = await open();
    const payload = randomBytes(size);
    const got = nextMessage(ws);
    ws.send(payload, { binary: true });
    const { data, isBinary } = await got;
    assert.equal(isBinary, true);
    assert.ok(data.equals(payload), `echoed ${data.length} bytes`);
    ws.close(1000);
    await once(ws, 'close');
  });
}

for (const size of [0, 125, 126, 65535, 65536]) {
  test(`text message of ${size} bytes (multi-byte UTF-8) comes back identical`, async () => {
    const ws = await open();
    const text = 'aé€😀'.repeat(Math.ceil(size / 10)).slice(0, size);
    const got = nextMessage(ws);
    ws.send(text);
    const { data, isBinary } = await got;
    assert.equal(isBinary, false);
    assert.equal(data.toString('utf8'), text);
    ws.close();
    await once(ws, 'close');
  });
}

test('a fragmented text message is reassembled by the client identically', async () => {
  const ws = await open();
  const got = nextMessage(ws);
  // "😀" split across fragments on purpose: code points may straddle frames.
  const bytes = Buffer.from('fragments: 😀 and more', 'utf8');
  ws.send(bytes.subarray(0, 13), { fin: false, binary: false });
  ws.send(bytes.subarray(13, 15), { fin: false, binary: false });
  ws.send(bytes.subarray(15), { fin: true, binary: false });
  const { data, isBinary } = await got;
  assert.equal(isBinary, false);
  assert.equal(data.toString(), 'fragments: 😀 and more');
  ws.close();
  await once(ws, 'close');
});

test('ping is answered with a pong carrying the same payload', async () => {
  const ws = await open();
  const pong = once(ws, 'pong');
  ws.ping(Buffer.from('are you there'));
  const [payload] = await pong;
  assert.equal(String(payload), 'are you there');
  ws.close();
  await once(ws, 'close');
});

for (const [code, reason] of [[1000, ''], [1001, 'leaving'], [3000, 'app'], [4999, 'x'.repeat(123)]] as const) {
  test(`client close ${code} is answered with the same code (RFC 6455 §5.5.1)`, async () => {
    const ws = await open();
    const closed = once(ws, 'close');
    ws.close(code, reason);
    const [gotCode] = await closed;
    assert.equal(gotCode, code);
  });
}

test('many messages on one connection arrive in order', async () => {
  const ws = await open();
  const n = 2000;
  const received: string[] = [];
  const done = new Promise<void>((resolve) => {
    ws.on('message', (d) => { received.push(String(d)); if (received.length === n) resolve(); });
  });
  for (let i = 0; i < n; i++) ws.send(`m${i}`);
  await done;
  assert.deepEqual(received, Array.from({ length: n }, (_, i) => `m${i}`));
  ws.close();
  await once(ws, 'close');
});

test('the gateway closes with 1009 when a message exceeds max_message', async () => {
  const small = await startGateway({ services: { echo: { path: '/echo', type: 'echo', max_message: 1024, allow_missing_origin: true } } });
  try {
    const ws = new WebSocket(small.url('/echo'));
    await once(ws, 'open');
    const closed = once(ws, 'close');
    ws.send(Buffer.alloc(1025));
    const [code] = await closed;
    assert.equal(code, 1009);
    assert.ok(small.auditReasons().includes('message_too_big'), small.auditReasons().join(','));
  } finally {
    await small.stop();
  }
});
