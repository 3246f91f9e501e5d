/**
 * Bad input at the gateway, end to end: every malformed handshake gets its HTTP
 * status and every malformed frame its close code, each with an audit line;
 * a canary connection keeps echoing throughout, and nothing leaks.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { RawClient, SAMPLE_KEY, closePayload, type FrameSpec, type HandshakeOptions } from '../../helpers/raw-client.js';
import { assertNoLeaks, snapshotResources } from '../../helpers/leaks.js';

let gw: TestGateway;
let canary: WebSocket;
let canarySeq = 0;

before(async () => {
  gw = await startGateway({
    services: {
      echo: { path: '/echo', type: 'echo', max_message: 4096, max_fragments: 8, allow_missing_origin: true },
    },
    websocket: { close_timeout: '500ms' },
  });
  canary = new WebSocket(gw.url('/echo'));
  await once(canary, 'open');
});

after(async () => {
  canary.close();
  await once(canary, 'close');
  await gw.stop();
});

/** The canary must still round-trip a message. */
async function canaryEchoes(): Promise<void> {
  const text = `canary ${++canarySeq}`;
  const got = new Promise<string>((resolve) => canary.once('message', (d) => resolve(String(d))));
  canary.send(text);
  assert.equal(await got, text);
}

const handshakeCases: Array<{ name: string; opts: HandshakeOptions; status: number; reason: string; header?: [string, string] }> = [
  { name: 'POST instead of GET', opts: { method: 'POST' }, status: 405, reason: 'method_not_allowed', header: ['allow', 'GET'] },
  { name: 'HTTP/1.0', opts: { httpVersion: '1.0' }, status: 400, reason: 'http_version' },
  { name: 'missing key', opts: { key: null }, status: 400, reason: 'bad_key' },
  { name: 'key of 15 bytes', opts: { key: Buffer.alloc(15).toString('base64') }, status: 400, reason: 'bad_key' },
  { name: 'key of 17 bytes', opts: { key: Buffer.alloc(17).toString('base64') }, status: 400, reason: 'bad_key' },
  { name: 'unpadded key', opts: { key: 'dGhlIHNhbXBsZSBub25jZQ' }, status: 400, reason: 'bad_key' },
  { name: 'two keys', opts: { key: null, headers: { 'Sec-WebSocket-Key': [SAMPLE_KEY, SAMPLE_KEY] } }, status: 400, reason: 'bad_key' },
  { name: 'missing version', opts: { version: null }, status: 400, reason: 'bad_version' },
  { name: 'version 8', opts: { version: '8' }, status: 426, reason: 'unsupported_version', header: ['sec-websocket-version', '13'] },
  { name: 'garbled version', opts: { version: 'abc' }, status: 400, reason: 'bad_version' },
  { name: 'Upgrade: websocket, h2c', opts: { headers: { Upgrade: 'websocket, h2c' } }, status: 400, reason: 'bad_upgrade' },
  { name: 'Upgrade: websocket2', opts: { headers: { Upgrade: 'websocket2' } }, status: 400, reason: 'bad_upgrade' },
  { name: 'body with Content-Length', opts: { headers: { 'Content-Length': '10' } }, status: 400, reason: 'upgrade_with_body' },
  { name: 'Transfer-Encoding', opts: { headers: { 'Transfer-Encoding': 'chunked' } }, status: 400, reason: 'upgrade_with_body' },
  { name: 'unknown path', opts: { path: '/nope' }, status: 404, reason: 'no_route' },
  { name: 'dot-segment path', opts: { path: '/x/../echo' }, status: 404, reason: 'no_route' },
  { name: 'case variant path', opts: { path: '/ECHO' }, status: 404, reason: 'no_route' },
  { name: 'absolute-form target', opts: { path: 'http://internal:8080/echo' }, status: 400, reason: 'bad_request_target' },
];

for (const c of handshakeCases) {
  test(`handshake: ${c.name} → ${c.status}`, async () => {
    const before = snapshotResources();
    const client = await RawClient.connect({ port: gw.port });
    const res = await client.sendHandshake({ path: '/echo', ...c.opts });
    assert.equal(res.status, c.status);
    if (c.header) assert.equal(res.headers[c.header[0]], c.header[1]);
    assert.notEqual(res.status, 101);
    await client.expectClosed();
    assert.ok(gw.auditReasons().includes(c.reason), `audit reasons: ${gw.auditReasons().join(',')}`);
    await canaryEchoes();
    await assertNoLeaks(before);
  });
}

test('handshake: Connection without "upgrade" → 400 and never 101', async () => {
  const client = await RawClient.connect({ port: gw.port });
  const res = await client.sendHandshake({ path: '/echo', headers: { Connection: 'keep-alive' } });
  assert.equal(res.status, 400);
  client.destroy();
  assert.ok(gw.auditReasons().includes('bad_connection'));
});

test('handshake: Connection: keep-alive, Upgrade (Firefox) → 101', async () => {
  const client = await RawClient.connect({ port: gw.port });
  const res = await client.sendHandshake({ path: '/echo', headers: { Connection: 'keep-alive, Upgrade' } });
  assert.equal(res.status, 101);
  assert.equal(res.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  client.destroy();
});

test('handshake: bytes pipelined behind a refused upgrade are never parsed', async () => {
  const client = await RawClient.connect({ port: gw.port });
  const bad = RawClient.handshakeRequest({ path: '/nope' });
  await client.write(bad + 'GET /echo HTTP/1.1\r\nHost: x\r\n\r\n');
  const res = await client.readHttpResponse();
  assert.equal(res.status, 404);
  await client.expectClosed();
  assert.equal(client.unread.indexOf('HTTP/1.1'), -1, 'exactly one response');
});

test('handshake: 2,000 header lines → 431, never a crash', async () => {
  const headers: Record<string, string> = {};
  for (let i = 0; i < 2000; i++) headers[`x${i.toString(36)}`] = 'a';
  const client = await RawClient.connect({ port: gw.port });
  const res = await client.sendHandshake({ path: '/echo', headers });
  assert.equal(res.status, 431);
  await client.expectClosed();
  await canaryEchoes();
});

test('handshake: a 64 KiB header section → 431', async () => {
  const client = await RawClient.connect({ port: gw.port });
  const res = await client.sendHandshake({ path: '/echo', headers: { Cookie: 'a'.repeat(64 * 1024) } });
  assert.equal(res.status, 431);
  await client.expectClosed();
  await canaryEchoes();
});

const M = (spec: Partial<FrameSpec> & { opcode: number }): FrameSpec => spec;
const frameCases: Array<{ name: string; frames: FrameSpec[]; code: number; reason: string }> = [
  { name: 'unmasked frame', frames: [M({ opcode: 1, payload: 'hi', mask: false })], code: 1002, reason: 'protocol_error' },
  { name: 'RSV1 without extension', frames: [M({ opcode: 1, payload: 'hi', rsv: 4 })], code: 1002, reason: 'protocol_error' },
  { name: 'RSV3 on a ping', frames: [M({ opcode: 9, rsv: 1 })], code: 1002, reason: 'protocol_error' },
  { name: 'reserved opcode 3', frames: [M({ opcode: 3 })], code: 1002, reason: 'protocol_error' },
  { name: 'reserved opcode 11', frames: [M({ opcode: 11, payload: 'x' })], code: 1002, reason: 'protocol_error' },
  { name: 'ping of 126 bytes', frames: [M({ opcode: 9, payload: Buffer.alloc(126) })], code: 1002, reason: 'protocol_error' },
  { name: 'fragmented ping', frames: [M({ opcode: 9, fin: false })], code: 1002, reason: 'protocol_error' },
  { name: 'orphan continuation', frames: [M({ opcode: 0, payload: 'x' })], code: 1002, reason: 'protocol_error' },
  { name: 'new message inside a fragmented one', frames: [M({ opcode: 1, payload: 'a', fin: false }), M({ opcode: 1, payload: 'b' })], code: 1002, reason: 'protocol_error' },
  { name: '64-bit length with the top bit set', frames: [M({ opcode: 2, lengthHigh: 0x80000000, declaredLength: 1 })], code: 1002, reason: 'protocol_error' },
  { name: 'invalid UTF-8 text', frames: [M({ opcode: 1, payload: Buffer.from([0xce, 0xba, 0xed, 0xa0, 0x80]) })], code: 1007, reason: 'invalid_payload' },
  { name: 'invalid UTF-8 in the first fragment (fail fast)', frames: [M({ opcode: 1, payload: Buffer.from([0xf4, 0x90, 0x80, 0x80]), fin: false })], code: 1007, reason: 'invalid_payload' },
  { name: 'close with 1-byte payload', frames: [M({ opcode: 8, payload: Buffer.from([0x03]) })], code: 1002, reason: 'protocol_error' },
  { name: 'close with code 1005', frames: [M({ opcode: 8, payload: closePayload(1005) })], code: 1002, reason: 'protocol_error' },
  { name: 'close with code 999', frames: [M({ opcode: 8, payload: closePayload(999) })], code: 1002, reason: 'protocol_error' },
  { name: 'close reason invalid UTF-8', frames: [M({ opcode: 8, payload: closePayload(1000, Buffer.from([0xed, 0xa0, 0x80])) })], code: 1007, reason: 'invalid_payload' },
  { name: 'frame declared larger than max_message', frames: [M({ opcode: 2, declaredLength: 1 << 30 })], code: 1009, reason: 'message_too_big' },
  { name: 'fragments summing over max_message', frames: [M({ opcode: 2, payload: Buffer.alloc(3000), fin: false }), M({ opcode: 0, payload: Buffer.alloc(3000) })], code: 1009, reason: 'message_too_big' },
  { name: 'more fragments than max_fragments (empty ones count)', frames: Array.from({ length: 10 }, (_, i) => M({ opcode: i === 0 ? 1 : 0, fin: false })), code: 1009, reason: 'message_too_big' },
];

for (const c of frameCases) {
  for (const chop of [undefined, 1]) {
    test(`frame: ${c.name}${chop ? ' (one byte per write)' : ''} → close ${c.code}`, async () => {
      const before = snapshotResources();
      const client = await RawClient.connect({ port: gw.port });
      const res = await client.sendHandshake({ path: '/echo' });
      assert.equal(res.status, 101);
      // One valid message first: it must be delivered, the bad input after it must not.
      await client.sendFrame({ opcode: 1, payload: 'before' });
      const echo = await client.readFrame();
      assert.equal(echo.payload.toString(), 'before');
      const bytes = Buffer.concat(c.frames.map((f) => client.frame(f)));
      await client.write(bytes, { chop }).catch(() => { /* the gateway may close mid-write */ });
      const close = await client.readClose();
      assert.equal(close.code, c.code);
      await client.expectClosed();
      assert.ok(gw.auditReasons().includes(c.reason), `audit reasons: ${gw.auditReasons().join(',')}`);
      await canaryEchoes();
      await assertNoLeaks(before);
    });
  }
}

test('a client that vanishes mid-message harms nothing', async () => {
  const before = snapshotResources();
  const client = await RawClient.connect({ port: gw.port });
  assert.equal((await client.sendHandshake({ path: '/echo' })).status, 101);
  await client.sendFrame({ opcode: 2, payload: Buffer.alloc(100), fin: false });
  client.destroy();
  await canaryEchoes();
  await assertNoLeaks(before);
});
