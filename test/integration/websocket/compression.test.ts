/**
 * permessage-deflate (RFC 7692) at the gateway, end to end with real sockets:
 * negotiation through the front door, the RFC's own examples on the wire,
 * every bad input with its close code and audit line, message order, the cap
 * on concurrent zlib work, and a slow reader that must not hold zlib work of
 * others. A canary connection keeps echoing throughout; nothing leaks.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import zlib from 'node:zlib';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { RawClient, closePayload, type FrameSpec } from '../../helpers/raw-client.js';
import { assertNoLeaks, snapshotResources } from '../../helpers/leaks.js';
import { zlibQueue } from '../../../src/websocket/zlib-pool.js';

const CONCURRENCY = 2;
const OFFER = 'permessage-deflate; client_max_window_bits';
const SYNC = { finishFlush: zlib.constants.Z_SYNC_FLUSH };

let gw: TestGateway;
let canary: WebSocket;
let canarySeq = 0;

before(async () => {
  gw = await startGateway({
    services: {
      z: { path: '/z', type: 'echo', compression: true, max_message: '64KiB', allow_missing_origin: true },
      zbig: { path: '/zbig', type: 'echo', compression: { threshold: 0 }, max_message: '16MiB', allow_missing_origin: true },
      ztakeover: { path: '/ztakeover', type: 'echo', compression: { client_no_context_takeover: false, threshold: 0 }, allow_missing_origin: true },
      zlimited: { path: '/zlimited', type: 'echo', compression: { client_max_window_bits: 10, server_max_window_bits: 11 }, allow_missing_origin: true },
      plain: { path: '/plain', type: 'echo', allow_missing_origin: true },
    },
    websocket: { close_timeout: '500ms', compression_concurrency: CONCURRENCY },
    limits: { message_rate: 1_000_000, byte_rate: '1GiB', handshake_rate: 10_000, handshake_burst: 10_000 },
  });
  canary = new WebSocket(gw.url('/z'), { perMessageDeflate: true });
  await once(canary, 'open');
});

after(async () => {
  canary.close();
  await once(canary, 'close');
  await gw.stop();
});

async function canaryEchoes(): Promise<void> {
  const text = `canary ${++canarySeq} ${'x'.repeat(2000)}`;
  let onClose: (code: number) => void = () => {};
  const got = new Promise<string>((resolve, reject) => {
    canary.once('message', (d) => resolve(String(d)));
    onClose = (code) => reject(new Error(`canary closed with ${code}`));
    canary.once('close', onClose);
  });
  canary.send(text);
  // One close listener per call would pile up over the file's tests.
  try { assert.equal(await got, text, 'the canary connection stopped echoing'); } finally { canary.off('close', onClose); }
}

/** The payload of one compressed message (RFC 7692 §7.2.1), as a client would send it. */
function deflateMessage(data: Buffer | string, windowBits = 15): Buffer {
  const out = zlib.deflateRawSync(typeof data === 'string' ? Buffer.from(data) : data, { ...SYNC, windowBits });
  return out.subarray(0, out.length - 4);
}

function inflateMessage(payload: Buffer): Buffer {
  return zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0, 0, 0xff, 0xff])]), SYNC);
}

async function rawCompressed(path: string, offer = OFFER): Promise<{ client: RawClient; extensions: string | undefined }> {
  const client = await RawClient.connect({ port: gw.port });
  const res = await client.upgrade(path, { 'Sec-WebSocket-Extensions': offer });
  assert.equal(res.status, 101, res.rawHead);
  return { client, extensions: res.headers['sec-websocket-extensions'] };
}

/** Read one whole message (frames until FIN), inflated when its first frame had RSV1. */
async function readMessage(client: RawClient): Promise<{ data: Buffer; opcode: number; compressed: boolean }> {
  const first = await client.readFrame(5000);
  assert.ok(first.opcode === 1 || first.opcode === 2, `expected a data frame, got opcode ${first.opcode}`);
  const parts = [first.payload];
  let f = first;
  while (!f.fin) {
    f = await client.readFrame(5000);
    assert.equal(f.opcode, 0, 'continuation expected');
    assert.equal(f.rsv, 0, 'RSV1 only on the first frame of a message (RFC 7692 §6)');
    parts.push(f.payload);
  }
  const compressed = first.rsv === 4;
  const data = compressed ? inflateMessage(Buffer.concat(parts)) : Buffer.concat(parts);
  return { data, opcode: first.opcode, compressed };
}

test('ws with perMessageDeflate: text and binary of many sizes echo, compressed both ways', { timeout: 60_000 }, async () => {
  const before = snapshotResources();
  const ws = new WebSocket(gw.url('/zbig'), { perMessageDeflate: { threshold: 0 }, maxPayload: 32 * 1024 * 1024 });
  const upgraded = once(ws, 'upgrade') as Promise<[{ headers: Record<string, string> }]>;
  await once(ws, 'open');
  const [res] = await upgraded;
  assert.equal(res.headers['sec-websocket-extensions'], 'permessage-deflate; server_no_context_takeover; client_no_context_takeover');
  for (const size of [0, 1, 125, 1024, 16 * 1024, 16 * 1024 + 1, 65536, 1024 * 1024, 5 * 1024 * 1024]) {
    for (const binary of [false, true]) {
      const data = binary ? randomBytes(size) : Buffer.from('{"k":"héllo wörld ✓"}'.repeat(Math.ceil(size / 24)).slice(0, size));
      const got = new Promise<Buffer>((resolve) => ws.once('message', (d, isBinary) => {
        assert.equal(isBinary, binary);
        resolve(d as Buffer);
      }));
      ws.send(data, { binary });
      assert.ok((await got).equals(Buffer.from(data)), `${binary ? 'binary' : 'text'} ${size} came back different`);
    }
  }
  ws.close();
  await once(ws, 'close');
  await assertNoLeaks(before);
});

test('RFC 7692 §7.2.3 examples on the wire decompress to "Hello"', { timeout: 60_000 }, async () => {
  const { client } = await rawCompressed('/z');
  const hex = (h: string): Buffer => Buffer.from(h.replace(/\s/g, ''), 'hex');
  // §7.2.3.1, one frame and in two fragments; §7.2.3.3, a stored block; §7.2.3.4, BFINAL set;
  // §7.2.3.5, two blocks; and a message after the BFINAL one (the context was replaced).
  const messages: FrameSpec[][] = [
    [{ opcode: 1, rsv: 4, payload: hex('f2 48 cd c9 c9 07 00') }],
    [{ opcode: 1, rsv: 4, fin: false, payload: hex('f2 48 cd') }, { opcode: 0, payload: hex('c9 c9 07 00') }],
    [{ opcode: 1, rsv: 4, payload: hex('00 05 00 fa ff 48 65 6c 6c 6f 00') }],
    [{ opcode: 1, rsv: 4, payload: zlib.deflateRawSync(Buffer.from('Hello')) }],
    [{ opcode: 1, rsv: 4, payload: hex('f2 48 05 00 00 00 ff ff ca c9 c9 07 00') }],
    [{ opcode: 1, rsv: 4, payload: hex('f2 48 cd c9 c9 07 00') }],
  ];
  for (const frames of messages) {
    await client.write(Buffer.concat(frames.map((f) => client.frame(f))));
    const m = await readMessage(client);
    assert.equal(m.data.toString(), 'Hello');
    // Below the 1 KiB threshold a whole message goes back uncompressed (a streamed one's size is not known: compressed).
    if (frames.length === 1) assert.equal(m.compressed, false, 'a 5-byte message is not compressed');
  }
  client.destroy();
});

test('§7.2.3.2: with client context takeover allowed, a message may refer to the one before', { timeout: 60_000 }, async () => {
  const { client, extensions } = await rawCompressed('/ztakeover');
  assert.equal(extensions, 'permessage-deflate; server_no_context_takeover');
  await client.sendFrame({ opcode: 1, rsv: 4, payload: Buffer.from('f248cdc9c90700', 'hex') });
  assert.equal((await readMessage(client)).data.toString(), 'Hello');
  // "Hello" again, as back-references into the previous message.
  await client.sendFrame({ opcode: 1, rsv: 4, payload: Buffer.from('f200110000', 'hex') });
  const m = await readMessage(client);
  assert.equal(m.data.toString(), 'Hello');
  assert.equal(m.compressed, true, 'threshold 0: compressed back');
  client.destroy();
});

test('negotiation: which offers are accepted and which declined (a handshake never fails because of one)', { timeout: 60_000 }, async () => {
  const cases: Array<{ path: string; offer: string | string[]; status: number; extensions?: string }> = [
    { path: '/z', offer: 'permessage-deflate', status: 101, extensions: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover' },
    // Several offers in one header, and over two header lines: the first acceptable one wins.
    { path: '/z', offer: 'permessage-deflate; foo, permessage-deflate; server_max_window_bits=12', status: 101,
      extensions: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12' },
    { path: '/z', offer: ['permessage-deflate; server_max_window_bits=8', 'permessage-deflate; client_max_window_bits=9'], status: 101,
      extensions: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9' },
    // Declined (RFC 7692 §5): the connection opens uncompressed.
    { path: '/z', offer: 'permessage-deflate; server_no_context_takeover; server_no_context_takeover', status: 101 },
    { path: '/z', offer: 'permessage-deflate; server_max_window_bits=20', status: 101 },
    { path: '/z', offer: 'permessage-deflate; mystery', status: 101 },
    { path: '/z', offer: 'x-webkit-deflate-frame', status: 101 },
    { path: '/zlimited', offer: 'permessage-deflate', status: 101 },
    { path: '/zlimited', offer: OFFER, status: 101, extensions: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=10' },
    { path: '/plain', offer: OFFER, status: 101 },
    // A header that cannot be read, or is over its limits: every offer declined, never a refused handshake.
    { path: '/z', offer: 'permessage-deflate; =15', status: 101 },
    { path: '/z', offer: 'permessage-deflate, permessage-deflate; x="unterminated', status: 101 },
    { path: '/z', offer: Array.from({ length: 50 }, () => 'permessage-deflate').join(', '), status: 101 },
  ];
  for (const c of cases) {
    const client = await RawClient.connect({ port: gw.port });
    const res = await client.upgrade(c.path, { 'Sec-WebSocket-Extensions': c.offer });
    const what = `${c.path} ${JSON.stringify(c.offer)}`;
    assert.equal(res.status, c.status, what);
    assert.equal(res.headers['sec-websocket-extensions'], c.extensions, what);
    // Declined or accepted, the connection works: plain text echoes; RSV1 only where accepted.
    await client.sendFrame({ opcode: 1, payload: 'plain' });
    assert.equal((await readMessage(client)).data.toString(), 'plain', what);
    if (c.extensions === undefined) {
      await client.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage('compressed') });
      assert.equal((await client.readClose()).code, 1002, `${what}: RSV1 without an agreed extension`);
    }
    client.destroy();
  }
  await canaryEchoes();
});

const badInput: Array<{ name: string; path?: string; frames: () => FrameSpec[]; code: number; reason: string }> = [
  { name: 'RSV1 on a continuation frame', frames: () => [{ opcode: 1, rsv: 4, fin: false, payload: deflateMessage('ab') }, { opcode: 0, rsv: 4, payload: Buffer.from([0]) }], code: 1002, reason: 'protocol_error' },
  { name: 'RSV1 on a ping', frames: () => [{ opcode: 9, rsv: 4 }], code: 1002, reason: 'protocol_error' },
  { name: 'RSV2 with permessage-deflate', frames: () => [{ opcode: 1, rsv: 2, payload: 'x' }], code: 1002, reason: 'protocol_error' },
  { name: 'compressed data that is not deflate', frames: () => [{ opcode: 2, rsv: 4, payload: Buffer.from('ff ff ff ff 12 34'.replace(/ /g, ''), 'hex') }], code: 1007, reason: 'invalid_payload' },
  { name: 'text that inflates to invalid UTF-8', frames: () => [{ opcode: 1, rsv: 4, payload: deflateMessage(Buffer.from([0x68, 0x69, 0xed, 0xa0, 0x80])) }], code: 1007, reason: 'invalid_payload' },
  { name: 'text whose first inflated chunk is invalid UTF-8 (fails before the rest is inflated)', frames: () => [{ opcode: 1, rsv: 4, payload: deflateMessage(Buffer.concat([Buffer.from([0xff]), Buffer.alloc(40000, 0x61)])) }], code: 1007, reason: 'invalid_payload' },
  { name: 'text that ends in a truncated code point', frames: () => [{ opcode: 1, rsv: 4, payload: deflateMessage(Buffer.from([0x61, 0xe2, 0x82])) }], code: 1007, reason: 'invalid_payload' },
  { name: 'a message that inflates past max_message (64 KiB)', frames: () => [{ opcode: 2, rsv: 4, payload: deflateMessage(Buffer.alloc(70 * 1024)) }], code: 1009, reason: 'message_too_big' },
  { name: 'a fragmented message that inflates past max_message in its third fragment', frames: () => {
    const p = deflateMessage(randomBytes(60 * 1024).toString('base64')); // 80 KiB of text, about 61 KiB compressed
    const third = Math.floor(p.length / 3);
    return [{ opcode: 1, rsv: 4, fin: false, payload: p.subarray(0, third) }, { opcode: 0, fin: false, payload: p.subarray(third, 2 * third) }, { opcode: 0, payload: p.subarray(2 * third) }];
  }, code: 1009, reason: 'message_too_big' },
];

for (const c of badInput) {
  test(`bad input: ${c.name} → close ${c.code}, audited`, { timeout: 30_000 }, async () => {
    const before = snapshotResources();
    const { client } = await rawCompressed(c.path ?? '/z');
    // A good compressed message first: delivered; the bad input after it is not.
    await client.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage('before') });
    assert.equal((await readMessage(client)).data.toString(), 'before');
    const auditsBefore = gw.auditReasons().length;
    await client.write(Buffer.concat(c.frames().map((f) => client.frame(f)))).catch(() => { /* closed mid-write */ });
    const close = await client.readClose(5000);
    assert.equal(close.code, c.code);
    await client.expectClosed(5000);
    assert.ok(gw.auditReasons().slice(auditsBefore).includes(c.reason), `audit reasons: ${gw.auditReasons().slice(auditsBefore).join(',')}`);
    await canaryEchoes();
    await assertNoLeaks(before);
  });
}

test('message order: compressed and plain messages, then a Close, come back in order', { timeout: 60_000 }, async () => {
  const { client } = await rawCompressed('/z');
  const big = 'b'.repeat(50 * 1024);
  const frames = [
    client.frame({ opcode: 1, rsv: 4, payload: deflateMessage(big) }), // compressed both ways
    client.frame({ opcode: 1, payload: 'small' }), // plain both ways, must not overtake
    client.frame({ opcode: 2, rsv: 4, payload: deflateMessage(Buffer.alloc(20 * 1024, 7)) }),
    client.frame({ opcode: 8, payload: closePayload(4000, 'bye') }),
  ];
  await client.write(Buffer.concat(frames));
  const a = await readMessage(client);
  assert.equal(a.data.toString(), big);
  assert.equal(a.compressed, true, 'a 50 KiB message above the threshold comes back compressed');
  const b = await readMessage(client);
  assert.equal(b.data.toString(), 'small');
  assert.equal(b.compressed, false);
  const c = await readMessage(client);
  assert.ok(c.data.equals(Buffer.alloc(20 * 1024, 7)));
  const close = await client.readClose();
  assert.equal(close.code, 4000, 'the Close comes after every message sent before it');
  await client.expectClosed();
});

test('a reader that stops reading does not hold zlib work of other connections', { timeout: 60_000 }, async () => {
  const before = snapshotResources();
  // More stalled connections than queue slots: each sends a large message it will never read back.
  const stalled = await Promise.all(Array.from({ length: CONCURRENCY + 1 }, () => rawCompressed('/zbig').then((r) => r.client)));
  for (const c of stalled) {
    c.socket.pause();
    await c.sendFrame({ opcode: 2, rsv: 4, payload: deflateMessage(randomBytes(6 * 1024 * 1024)) });
  }
  // Wait until every stalled echo has filled its way back and paused (queue slots given back).
  for (let i = 0; i < 500 && (zlibQueue.active > 0 || zlibQueue.queued > 0); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(zlibQueue.active, 0, 'paused readers hold no zlib slot');
  const { client } = await rawCompressed('/zbig');
  const text = 'still served '.repeat(1000);
  await client.sendFrame({ opcode: 1, rsv: 4, payload: deflateMessage(text) });
  assert.equal((await readMessage(client)).data.toString(), text);
  client.destroy();
  for (const c of stalled) c.destroy();
  await canaryEchoes();
  await assertNoLeaks(before);
});

/** One series of the gateway's /metrics text (0 when absent); labels in the order the family names them. */
async function metric(name: string, labels = ''): Promise<number> {
  const text = await gw.gateway.metrics.render();
  const escaped = `${name}${labels === '' ? '' : `{${labels}}`}`.replace(/[{}"\\]/g, (c) => `\\${c}`);
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Live zlib contexts by state, from /metrics. */
async function contexts(): Promise<{ deflateInUse: number; inflateInUse: number; deflateSpare: number; inflateSpare: number }> {
  return {
    deflateInUse: await metric('gatehouse_compression_contexts', 'kind="deflate",state="in_use"'),
    inflateInUse: await metric('gatehouse_compression_contexts', 'kind="inflate",state="in_use"'),
    deflateSpare: await metric('gatehouse_compression_contexts', 'kind="deflate",state="spare"'),
    inflateSpare: await metric('gatehouse_compression_contexts', 'kind="inflate",state="spare"'),
  };
}

/** Poll /metrics until `ok` holds (contexts close a tick after their last use); the last reading either way. */
async function contextsWhen(ok: (c: Awaited<ReturnType<typeof contexts>>) => boolean): Promise<Awaited<ReturnType<typeof contexts>>> {
  let c = await contexts();
  for (let i = 0; i < 300 && !ok(c); i++) {
    await new Promise((r) => setTimeout(r, 10));
    c = await contexts();
  }
  return c;
}

test('metrics: offers accepted and declined per service, zlib bytes both ways, operations and contexts', { timeout: 60_000 }, async () => {
  const accepted = await metric('gatehouse_compression_negotiations_total', 'service="zbig",outcome="accepted"');
  const declined = await metric('gatehouse_compression_negotiations_total', 'service="zbig",outcome="declined"');
  const deflatedPlain = await metric('gatehouse_compression_bytes_total', 'operation="deflate",side="plain"');
  const deflatedCompressed = await metric('gatehouse_compression_bytes_total', 'operation="deflate",side="compressed"');
  const inflatedPlain = await metric('gatehouse_compression_bytes_total', 'operation="inflate",side="plain"');
  const inflatedCompressed = await metric('gatehouse_compression_bytes_total', 'operation="inflate",side="compressed"');

  const { client } = await rawCompressed('/zbig');
  const { client: refused } = await rawCompressed('/zbig', 'permessage-deflate; mystery');
  refused.destroy();
  const text = 'metrics '.repeat(4096); // 32 KiB, very compressible
  const payload = deflateMessage(text);
  await client.sendFrame({ opcode: 1, rsv: 4, payload });
  const m = await readMessage(client);
  assert.equal(m.data.toString(), text);
  assert.equal(m.compressed, true);
  client.destroy();

  assert.equal(await metric('gatehouse_compression_negotiations_total', 'service="zbig",outcome="accepted"'), accepted + 1, 'one offer accepted');
  assert.equal(await metric('gatehouse_compression_negotiations_total', 'service="zbig",outcome="declined"'), declined + 1, 'one offer declined');
  assert.equal(await metric('gatehouse_compression_bytes_total', 'operation="inflate",side="compressed"') - inflatedCompressed, payload.length, 'compressed bytes inflated');
  assert.equal(await metric('gatehouse_compression_bytes_total', 'operation="inflate",side="plain"') - inflatedPlain, text.length, 'plain bytes they became');
  assert.equal(await metric('gatehouse_compression_bytes_total', 'operation="deflate",side="plain"') - deflatedPlain, text.length, 'plain bytes compressed');
  const out = await metric('gatehouse_compression_bytes_total', 'operation="deflate",side="compressed"') - deflatedCompressed;
  assert.ok(out > 0 && out < text.length / 20, `compressed bytes sent: ${out} for ${text.length}`);
  assert.equal(await metric('gatehouse_compression_operations', 'state="running"'), 0, 'nothing running at rest');
  assert.equal(await metric('gatehouse_compression_operations', 'state="waiting"'), 0, 'nothing waiting at rest');
  const c = await contextsWhen((x) => x.deflateInUse === 0 && x.inflateInUse === 0);
  assert.deepEqual([c.deflateInUse, c.inflateInUse], [0, 0], 'no context in use at rest');
  assert.ok(c.deflateSpare >= 1 && c.inflateSpare >= 1, 'the contexts used went back to the free list');
});

test('many compressed connections: the zlib cap holds, each open message holds one decompressor, idle ones hold none, others are served', { timeout: 120_000 }, async () => {
  const before = snapshotResources();
  const N = 100;
  const start = await contextsWhen((x) => x.deflateInUse === 0 && x.inflateInUse === 0);
  assert.deepEqual([start.deflateInUse, start.inflateInUse], [0, 0], 'no context in use before');
  zlibQueue.resetPeak();
  const clients = await Promise.all(Array.from({ length: N }, () => rawCompressed('/zbig').then((r) => r.client)));
  const plain = new WebSocket(gw.url('/plain'));
  await once(plain, 'open');
  const messages = clients.map((_, i) => Buffer.from(JSON.stringify(Array.from({ length: 1500 }, (_, k) => ({ conn: i, k, v: `value ${k * i}` })))));
  const payloads = messages.map((m) => deflateMessage(m));

  // Every connection starts a compressed message and stops halfway: each holds one decompressor, no more.
  await Promise.all(clients.map((c, i) => c.sendFrame({ opcode: 1, rsv: 4, fin: false, payload: payloads[i].subarray(0, payloads[i].length >> 1) })));
  const open = await contextsWhen((x) => x.inflateInUse === N && zlibQueue.active === 0 && zlibQueue.queued === 0);
  assert.equal(open.inflateInUse, N, `${N} messages in progress hold ${N} decompressors`);
  // Meanwhile others are served: an uncompressed connection and a compressed one.
  const echoed = once(plain, 'message');
  plain.send('plain still served');
  assert.equal(String((await echoed)[0]), 'plain still served');
  await canaryEchoes();

  // The rest of every message at once: all inflated, echoed and compressed back, never more than the cap at a time.
  await Promise.all(clients.map((c, i) => c.sendFrame({ opcode: 0, payload: payloads[i].subarray(payloads[i].length >> 1) })));
  const echoes = await Promise.all(clients.map((c) => readMessage(c)));
  echoes.forEach((m, i) => assert.ok(m.data.equals(messages[i]), `echo ${i} differs`));
  assert.ok(zlibQueue.peak <= CONCURRENCY, `at most ${CONCURRENCY} zlib operations at once, saw ${zlibQueue.peak}`);
  assert.equal(zlibQueue.peak, CONCURRENCY, `the queue was exercised: ${N} connections filled it`);

  // Idle again, all still open: no context per connection, the free list within the cap.
  const idle = await contextsWhen((x) => x.deflateInUse === 0 && x.inflateInUse === 0);
  assert.deepEqual([idle.deflateInUse, idle.inflateInUse], [0, 0], `${N} idle compressed connections hold no zlib context`);
  assert.ok(idle.deflateSpare <= CONCURRENCY && idle.inflateSpare <= CONCURRENCY, `spare contexts within the cap: ${JSON.stringify(idle)}`);
  await canaryEchoes();
  for (const c of clients) c.destroy();
  plain.close();
  await once(plain, 'close');
  await assertNoLeaks(before);
});

test('with client context takeover on, each idle connection keeps exactly its own decompressor, freed when it closes', { timeout: 60_000 }, async () => {
  const N = 20;
  const clients = await Promise.all(Array.from({ length: N }, () => rawCompressed('/ztakeover').then((r) => r.client)));
  for (const c of clients) {
    await c.sendFrame({ opcode: 1, rsv: 4, payload: Buffer.from('f248cdc9c90700', 'hex') });
    assert.equal((await readMessage(c)).data.toString(), 'Hello');
  }
  const kept = await contextsWhen((x) => x.inflateInUse === N && x.deflateInUse === 0);
  assert.equal(kept.inflateInUse, N, `${N} connections with context takeover keep ${N} decompressors`);
  assert.equal(kept.deflateInUse, 0, 'the gateway keeps no compressor (server_no_context_takeover)');
  for (const c of clients) c.destroy();
  const after = await contextsWhen((x) => x.inflateInUse === 0);
  assert.equal(after.inflateInUse, 0, 'closed connections free their decompressors');
});
