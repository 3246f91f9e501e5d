import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { FrameWriter, deliverRead, encodeHeader, encodeClosePayload, FLUSH_AT, SMALL_FRAME } from '../../../src/websocket/frame-writer.js';
import { FrameParser } from '../../../src/websocket/frame-parser.js';
import { applyMask } from '../../../src/websocket/mask.js';
import { OP_BINARY, OP_CLOSE, OP_TEXT } from '../../../src/websocket/constants.js';
import { parseServerFrame } from '../../helpers/raw-client.js';

/** Records what a FrameWriter does to its socket. */
class FakeSocket {
  calls: string[] = [];
  chunks: Buffer[] = [];
  /** The buffers as given (not copied): what the socket's queue would hold on to. */
  given: Buffer[] = [];
  /** Bytes held while corked (the kernel takes everything else at once). */
  writableLength = 0;
  writableHighWaterMark = 16384;
  destroyed = false;
  writableEnded = false;
  corked = 0;
  cork(): void { this.calls.push('cork'); this.corked++; }
  uncork(): void {
    this.calls.push('uncork');
    if (this.corked > 0 && --this.corked === 0) this.writableLength = 0;
  }
  write(b: Buffer): boolean {
    this.calls.push(`write:${b.length}`);
    this.chunks.push(Buffer.from(b));
    this.given.push(b);
    if (this.corked > 0) this.writableLength += b.length;
    return true;
  }
  get bytes(): Buffer { return Buffer.concat(this.chunks); }
}

function writer(masked: boolean): { w: FrameWriter; s: FakeSocket } {
  const s = new FakeSocket();
  return { w: new FrameWriter(s as unknown as Socket, masked), s };
}

describe('encodeHeader', () => {
  for (const [len, size] of [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10], [2 ** 32 + 5, 10]] as const) {
    it(`length ${len} → ${size}-byte header (minimal encoding), +4 with a mask`, () => {
      const h = encodeHeader(OP_BINARY, true, len);
      assert.equal(h.length, size);
      assert.equal(h[0], 0x82);
      assert.equal(h[1] & 0x80, 0);
      const m = encodeHeader(OP_TEXT, false, len, Buffer.from([1, 2, 3, 4]));
      assert.equal(m.length, size + 4);
      assert.equal(m[0], 0x01);
      assert.equal(m[1] & 0x80, 0x80);
      assert.deepEqual([...m.subarray(size)], [1, 2, 3, 4]);
      const declared = (m[1] & 0x7f) < 126 ? m[1] & 0x7f : (m[1] & 0x7f) === 126 ? m.readUInt16BE(2) : m.readUInt32BE(2) * 2 ** 32 + m.readUInt32BE(6);
      assert.equal(declared, len);
    });
  }
});

describe('encodeClosePayload', () => {
  it('code + reason; none → empty; 1005 → empty', () => {
    assert.deepEqual([...encodeClosePayload(1000, 'ok')], [0x03, 0xe8, 0x6f, 0x6b]);
    assert.equal(encodeClosePayload(undefined).length, 0);
    assert.equal(encodeClosePayload(1005).length, 0);
  });
  it('never puts 1004/1006/1015 or out-of-range codes on the wire', () => {
    for (const c of [0, 999, 1004, 1006, 1015, 1016, 2000, 5000]) assert.throws(() => encodeClosePayload(c), RangeError);
  });
  it('truncates the reason to 123 bytes without cutting a code point', () => {
    const p = encodeClosePayload(1000, '€'.repeat(60));
    assert.ok(p.length <= 125);
    assert.equal(p.subarray(2).toString(), '€'.repeat(41));
  });
});

describe('FrameWriter', () => {
  it('small frame: header and payload in one write, batched until the end of the tick (no cork)', async () => {
    const { w, s } = writer(false);
    w.writeFrame(OP_TEXT, Buffer.from('hello'), true);
    assert.deepEqual(s.calls, [], 'built in the batch segment, not yet handed to the socket');
    assert.equal(w.pending, 7);
    await new Promise((resolve) => process.nextTick(resolve));
    assert.deepEqual(s.calls, ['write:7'], 'one write, and no cork/uncork around it');
    assert.equal(w.pending, 0);
    const f = parseServerFrame(s.bytes);
    assert.equal(f?.frame.payload.toString(), 'hello');
    assert.equal(f?.frame.masked, false);
  });

  it('large frame: header and payload as two writes (payload not copied), batched with the tick', async () => {
    const { w, s } = writer(false);
    const big = Buffer.alloc(SMALL_FRAME + 1, 3);
    w.writeFrame(OP_BINARY, big, true);
    w.writeFrame(OP_BINARY, big, true);
    w.writeFrame(OP_TEXT, Buffer.from('x'), true);
    assert.deepEqual(s.calls, ['cork', 'write:4', `write:${big.length}`, 'write:4', `write:${big.length}`]);
    await new Promise((resolve) => process.nextTick(resolve));
    assert.deepEqual(s.calls.slice(-2), ['write:3', 'uncork']);
    assert.equal(s.calls.filter((c) => c === 'uncork').length, 1);
    let rest = s.bytes;
    for (const expected of [big, big, Buffer.from('x')]) {
      const r = parseServerFrame(rest);
      assert.ok(r);
      assert.ok(r.frame.payload.equals(expected));
      rest = rest.subarray(r.size);
    }
    assert.equal(rest.length, 0);
  });

  it(`a batch reaching ${FLUSH_AT} bytes is flushed at once; the end-of-tick flush then leaves the socket alone`, async () => {
    const { w, s } = writer(false);
    const mid = Buffer.alloc(4096, 1);
    for (let i = 0; i < 15; i++) w.writeFrame(OP_BINARY, mid, true);
    assert.equal(s.calls.filter((c) => c === 'uncork').length, 0, '15 × 4 KiB stay in the batch');
    w.writeFrame(OP_BINARY, mid, true);
    assert.equal(s.calls.at(-1), 'uncork', 'the 16th reaches 64 KiB: flushed now');
    assert.equal(s.corked, 0);
    w.writeFrame(OP_BINARY, Buffer.from('after'), true);
    assert.equal(w.pending, 7, 'the rest of the tick goes on in the batch');
    await new Promise((resolve) => process.nextTick(resolve));
    assert.equal(s.corked, 0);
    assert.equal(w.pending, 0);
    assert.deepEqual(s.calls.slice(-1), ['write:7'], 'the end of the tick writes the rest');
    assert.equal(s.calls.filter((c) => c === 'cork').length, 1);
    assert.equal(s.calls.filter((c) => c === 'uncork').length, 1, 'the cork of the large frames was released once');
    const big = Buffer.alloc(FLUSH_AT, 2);
    const m = writer(true);
    m.w.writeFrameRemasked(OP_BINARY, big, true, null);
    assert.deepEqual(m.s.calls, ['cork', 'write:14', `write:${FLUSH_AT}`, 'uncork'], 'a 64 KiB piece leaves at once');
    await new Promise((resolve) => process.nextTick(resolve));
    assert.equal(m.s.calls.length, 4);
  });

  it('client role masks with a fresh key per frame and never mutates the caller buffer', () => {
    const { w, s } = writer(true);
    for (const size of [10, SMALL_FRAME + 10]) {
      const payload = Buffer.alloc(size, 0x61);
      const copy = Buffer.from(payload);
      w.writeFrame(OP_TEXT, payload, true);
      w.writeFrame(OP_TEXT, payload, true);
      assert.ok(payload.equals(copy), 'caller buffer unchanged');
    }
    let rest = s.bytes;
    const keys = new Set<string>();
    while (rest.length > 0) {
      const r = parseServerFrame(rest);
      assert.ok(r);
      assert.equal(r.frame.masked, true);
      assert.ok(r.frame.payload.every((b) => b === 0x61));
      const keyAt = r.size - r.frame.payload.length - 4;
      keys.add(rest.subarray(keyAt, keyAt + 4).toString('hex'));
      rest = rest.subarray(r.size);
    }
    assert.equal(keys.size, 4);
  });

  it('writeFrameRemasked re-masks a masked payload in place, in one pass', () => {
    for (const size of [100, 5000]) {
      const plain = Buffer.from('x'.repeat(size));
      const clientKey = Buffer.from([9, 8, 7, 6]);
      const masked = Buffer.from(plain);
      applyMask(masked, clientKey);
      const { w, s } = writer(true);
      w.writeFrameRemasked(OP_TEXT, masked, true, clientKey);
      w.spill();
      const r = parseServerFrame(s.bytes);
      assert.ok(r?.frame.masked);
      assert.ok(r?.frame.payload.equals(plain));
      // Server role: the payload is unmasked in place, frame sent plain.
      const again = Buffer.from(plain);
      applyMask(again, clientKey);
      const srv = writer(false);
      srv.w.writeFrameRemasked(OP_TEXT, again, true, clientKey);
      srv.w.spill();
      const r2 = parseServerFrame(srv.s.bytes);
      assert.equal(r2?.frame.masked, false);
      assert.ok(r2?.frame.payload.equals(plain));
    }
  });

  it('writeFrameRemasked: any length and key rotation, masked input → freshly masked frame (client role) or plain (server role)', async () => {
    for (const size of [0, 1, 2, 3, 5, 9, 125, 126, SMALL_FRAME - 1, SMALL_FRAME, SMALL_FRAME + 1, SMALL_FRAME + 3, 5001]) {
      for (let rot = 0; rot < 4; rot++) {
        const plain = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + size) & 0xff));
        const key = Buffer.from([0x11, 0x22, 0x33, 0x44]);
        for (const masked of [true, false]) {
          const payload = Buffer.from(plain);
          applyMask(payload, key, 0, size, rot);
          // The key as a parser hands it over: rotated so that byte 0 uses key[0].
          const pieceKey = Buffer.from([key[rot], key[(rot + 1) & 3], key[(rot + 2) & 3], key[(rot + 3) & 3]]);
          const { w, s } = writer(masked);
          w.writeFrameRemasked(OP_BINARY, payload, true, pieceKey);
          if (size > SMALL_FRAME) assert.equal(s.calls[0], 'cork', 'a large frame joins the batch corked');
          else assert.deepEqual(s.calls, [], 'a small frame waits in the batch segment');
          assert.ok(!s.calls.includes('uncork'), 'no uncork of its own');
          w.spill();
          const r = parseServerFrame(s.bytes);
          assert.ok(r, `size ${size}`);
          assert.equal(r.frame.masked, masked);
          assert.ok(r.frame.payload.equals(plain), `size ${size} rot ${rot} masked ${masked}`);
          if (size > SMALL_FRAME) assert.ok(s.calls.includes(`write:${size}`), 'large payload written as is (no copy)');
          await new Promise((resolve) => process.nextTick(resolve));
          if (size > SMALL_FRAME) assert.equal(s.calls.at(-1), 'uncork');
          assert.equal(s.corked, 0, 'nothing left corked');
        }
      }
    }
  });

  it('writeFrameRemasked with a plain payload masks it in place (client role)', () => {
    const plain = Buffer.from('z'.repeat(SMALL_FRAME + 7));
    const payload = Buffer.from(plain);
    const { w, s } = writer(true);
    w.writeFrameRemasked(OP_TEXT, payload, false, null);
    const r = parseServerFrame(s.bytes);
    assert.ok(r?.frame.masked);
    assert.equal(r.frame.fin, false);
    assert.ok(r.frame.payload.equals(plain));
  });

  it('writeClose writes a Close frame', () => {
    const { w, s } = writer(false);
    w.writeClose(1001, 'bye');
    w.spill();
    const r = parseServerFrame(s.bytes);
    assert.equal(r?.frame.opcode, OP_CLOSE);
    assert.equal(r?.frame.payload.readUInt16BE(0), 1001);
    assert.equal(r?.frame.payload.subarray(2).toString(), 'bye');
  });

  it('tick segments: writers sharing the slab in turn each get their own frames, whole and in order', async () => {
    const a = writer(false);
    const b = writer(true);
    const sentA: Buffer[] = [];
    const sentB: Buffer[] = [];
    // Interleaved small frames, a large one in the middle, and enough bytes to
    // cross several 16 KiB slabs: every writer's stream must parse back to what it sent.
    for (let i = 0; i < 600; i++) {
      const pa = Buffer.alloc((i * 37) % (SMALL_FRAME + 1), i & 0xff);
      a.w.writeFrame(OP_BINARY, pa, true);
      sentA.push(pa);
      if (i % 3 === 0) {
        const pb = Buffer.alloc((i * 11) % 200, (i + 1) & 0xff);
        b.w.writeFrame(OP_BINARY, pb, true);
        sentB.push(pb);
      }
      if (i === 300) {
        const big = Buffer.alloc(SMALL_FRAME + 100, 9);
        a.w.writeFrame(OP_BINARY, big, true);
        sentA.push(big);
      }
    }
    await new Promise((resolve) => process.nextTick(resolve));
    for (const [{ s }, sent, masked] of [[a, sentA, false], [b, sentB, true]] as const) {
      let rest = s.bytes;
      for (const expected of sent) {
        const r = parseServerFrame(rest);
        assert.ok(r, 'a frame');
        assert.equal(r.frame.masked, masked);
        assert.ok(r.frame.payload.equals(expected), 'payload in order');
        rest = rest.subarray(r.size);
      }
      assert.equal(rest.length, 0, 'nothing else');
    }
    // b takes the slab's tail every third frame, which ends a's segment: ~200 segments for 601 frames.
    assert.ok(a.s.calls.filter((c) => c.startsWith('write:')).length < 300, 'segments, not one write per frame');
    const c = writer(false);
    for (let i = 0; i < 100; i++) c.w.writeFrame(OP_BINARY, Buffer.alloc(64), true);
    await new Promise((resolve) => process.nextTick(resolve));
    assert.ok(c.s.calls.filter((x) => x.startsWith('write:')).length <= 2, 'one writer alone: one segment per slab');
  });

  it('a socket that is already queueing gets an exact-size copy of the segment, not a view pinning a slab', async () => {
    const idle = writer(false);
    idle.w.writeFrame(OP_TEXT, Buffer.from('hi'), true);
    await new Promise((resolve) => process.nextTick(resolve));
    assert.equal(idle.s.given[0].length, 4);
    assert.ok(idle.s.given[0].buffer.byteLength > 4, 'not queueing: a view into the slab (no copy)');
    const slow = writer(false);
    slow.s.writableLength = 5000; // bytes the peer has not taken yet
    slow.w.writeFrame(OP_TEXT, Buffer.from('hi'), true);
    await new Promise((resolve) => process.nextTick(resolve));
    const given = slow.s.given[0];
    assert.equal(given.length, 4);
    assert.equal(given.buffer.byteLength, 4, 'queueing: its own 4 bytes');
    assert.equal(parseServerFrame(given)?.frame.payload.toString(), 'hi');
  });

  it('a segment is not written to a socket that has ended or been destroyed', async () => {
    const { w, s } = writer(false);
    w.writeFrame(OP_TEXT, Buffer.from('late'), true);
    s.writableEnded = true;
    await new Promise((resolve) => process.nextTick(resolve));
    assert.deepEqual(s.calls, []);
    assert.equal(w.pending, 0);
  });

  it('frames written while a read is delivered leave when the delivery returns: one write per writer, before the tick ends', () => {
    const a = writer(false);
    const b = writer(true);
    const big = Buffer.alloc(SMALL_FRAME + 10, 5);
    const read = (ws: [FrameWriter, FrameWriter], chunk: Buffer): void => {
      ws[0].writeFrame(OP_BINARY, chunk, true);
      // A nested delivery (a parser resumed inside a delivery) joins the outer one.
      deliverRead((w: FrameWriter, c: Buffer) => { w.writeFrame(OP_BINARY, c, true); }, ws[0], chunk);
      assert.equal(a.s.calls.length, 0, 'nothing leaves before the outermost delivery returns');
      ws[1].writeFrame(OP_BINARY, chunk, true);
      ws[1].writeFrame(OP_BINARY, big, true);
    };
    deliverRead(read, [a.w, b.w] as [FrameWriter, FrameWriter], Buffer.from('ping'));
    assert.deepEqual(a.s.calls, ['write:12'], 'a: both small frames in one write, no cork');
    assert.equal(a.w.pending, 0);
    assert.deepEqual(b.s.calls, ['cork', 'write:10', `write:${big.length + 8}`, 'uncork'], 'b: the small frame and the large one in one writev');
    assert.equal(b.s.corked, 0);
    let rest = a.s.bytes;
    for (let i = 0; i < 2; i++) {
      const r = parseServerFrame(rest);
      assert.equal(r?.frame.payload.toString(), 'ping');
      rest = rest.subarray(r?.size ?? 0);
    }
    assert.equal(rest.length, 0);
  });

  it('a delivery that throws still ends its batches', () => {
    const { w, s } = writer(false);
    assert.throws(() => deliverRead((x: FrameWriter) => { x.writeFrame(OP_TEXT, Buffer.from('x'), true); throw new Error('boom'); }, w, null), /boom/);
    assert.deepEqual(s.calls, ['write:3']);
    // The next delivery is not nested in a delivery that never ended.
    deliverRead((x: FrameWriter) => { x.writeFrame(OP_TEXT, Buffer.from('y'), true); }, w, null);
    assert.deepEqual(s.calls, ['write:3', 'write:3']);
  });

  it('round trip: client-role writer output parses in a server-role parser', () => {
    const { w, s } = writer(true);
    const msgs = ['', 'a', 'é'.repeat(100), 'z'.repeat(70_000)];
    for (const m of msgs) w.writeFrame(OP_TEXT, Buffer.from(m), true);
    const got: string[] = [];
    let cur: Buffer[] = [];
    const p = new FrameParser({ expectMasked: true, maxFrame: 1 << 20, maxMessage: 1 << 20, maxFragments: 10 }, {
      onData(d, _b, _first, fin) { cur.push(Buffer.from(d)); if (fin) { got.push(Buffer.concat(cur).toString()); cur = []; } },
      onPing() {}, onPong() {}, onClose() {}, onError(c, r) { assert.fail(`${c} ${r}`); },
    });
    p.push(s.bytes);
    assert.deepEqual(got, msgs);
  });
});
