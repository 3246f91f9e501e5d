import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { applyMask, remask, randomMask, randomMaskKey } from '../../../src/websocket/mask.js';

function naive(buf: Buffer, mask: Buffer, start: number, end: number, offset: number): void {
  for (let i = start; i < end; i++) buf[i] ^= mask[(i - start + offset) & 3];
}

describe('mask', () => {
  it('matches a naive implementation for odd lengths, offsets and unaligned views', () => {
    for (let round = 0; round < 500; round++) {
      const backing = randomBytes(400);
      const viewStart = round % 7;
      const buf = backing.subarray(viewStart, viewStart + 300 + (round % 13));
      const mask = randomBytes(4);
      const start = round % 11;
      const end = buf.length - (round % 5);
      const offset = round % 4;
      const expected = Buffer.from(buf);
      naive(expected, mask, start, end, offset);
      applyMask(buf, mask, start, end, offset);
      assert.ok(buf.equals(expected), `round ${round}`);
    }
  });

  it('short ranges (byte path) and empty ranges', () => {
    for (let len = 0; len < 40; len++) {
      const buf = randomBytes(len);
      const mask = randomBytes(4);
      const expected = Buffer.from(buf);
      naive(expected, mask, 0, len, 0);
      applyMask(buf, mask);
      assert.ok(buf.equals(expected), `len ${len}`);
    }
  });

  it('masking twice restores the data; masking in pieces equals masking at once', () => {
    const data = randomBytes(1000);
    const mask = randomBytes(4);
    const a = Buffer.from(data);
    applyMask(a, mask);
    const b = Buffer.from(data);
    applyMask(b, mask, 0, 333, 0);
    applyMask(b, mask, 333, 777, 333);
    applyMask(b, mask, 777, 1000, 777);
    assert.ok(a.equals(b));
    applyMask(a, mask);
    assert.ok(a.equals(data));
  });

  it('remask = unmask with one key then mask with another, in one pass', () => {
    for (let round = 0; round < 100; round++) {
      const plain = randomBytes(50 + round * 3);
      const k1 = randomBytes(4);
      const k2 = randomBytes(4);
      const fromOffset = round % 4;
      const buf = Buffer.from(plain);
      naive(buf, k1, 0, buf.length, fromOffset);
      remask(buf, k1, k2, 0, buf.length, fromOffset, 0);
      const expected = Buffer.from(plain);
      naive(expected, k2, 0, expected.length, 0);
      assert.ok(buf.equals(expected), `round ${round}`);
    }
    const plain = randomBytes(100);
    const k = randomBytes(4);
    const buf = Buffer.from(plain);
    remask(buf, null, k);
    const expected = Buffer.from(plain);
    naive(expected, k, 0, 100, 0);
    assert.ok(buf.equals(expected), 'null fromMask = plain input');
  });

  it('remask matches unmask-then-mask for every start/end, both offsets and unaligned views', () => {
    for (let len = 0; len <= 70; len++) {
      for (let viewStart = 0; viewStart < 4; viewStart++) {
        const backing = randomBytes(len + 8);
        const buf = backing.subarray(viewStart, viewStart + len);
        const k1 = randomBytes(4);
        const k2 = randomBytes(4);
        const start = len % 5 < len ? len % 5 : 0;
        const end = len - (len % 3 < len - start ? len % 3 : 0);
        const fromOffset = (len + viewStart) & 3;
        const toOffset = (len * 3 + 1) & 3;
        const expected = Buffer.from(buf);
        naive(expected, k1, start, end, fromOffset);
        naive(expected, k2, start, end, toOffset);
        const before = Buffer.from(backing);
        remask(buf, k1, k2, start, end, fromOffset, toOffset);
        assert.ok(buf.equals(expected), `len ${len} view ${viewStart}`);
        // Nothing outside [start, end) of the view is touched.
        assert.ok(backing.subarray(0, viewStart + start).equals(before.subarray(0, viewStart + start)));
        assert.ok(backing.subarray(viewStart + end).equals(before.subarray(viewStart + end)));
      }
    }
  });

  it('randomMask gives 4-byte keys that differ and never change afterwards', () => {
    const keys = Array.from({ length: 5000 }, () => randomMask());
    const copies = keys.map((k) => Buffer.from(k));
    // 5000 keys span several pools: earlier keys must be untouched by refills.
    keys.forEach((k, i) => {
      assert.equal(k.length, 4);
      assert.ok(k.equals(copies[i]));
    });
    const distinct = new Set(copies.map((k) => k.toString('hex')));
    assert.ok(distinct.size > 4990, `only ${distinct.size} distinct keys`);
  });

  it('stays right when calls alternate between backing stores (the word view is cached per ArrayBuffer)', () => {
    // Buffers on several ArrayBuffers, masked in an interleaved order, some of
    // them pool slices sharing one store: each result must match the naive one.
    const stores = [randomBytes(1000), Buffer.allocUnsafeSlow(777).fill(7), randomBytes(4096)];
    const pooled = [Buffer.allocUnsafe(100), Buffer.allocUnsafe(200), Buffer.allocUnsafe(64)];
    for (const p of pooled) p.fill(3);
    const views = [...stores.map((b, i) => b.subarray(i, b.length - i)), ...pooled];
    for (let round = 0; round < 300; round++) {
      const buf = views[(round * 7) % views.length];
      const mask = randomBytes(4);
      const start = round % 5;
      const end = buf.length - (round % 3);
      const expected = Buffer.from(buf);
      naive(expected, mask, start, end, round & 3);
      applyMask(buf, mask, start, end, round & 3);
      assert.ok(buf.equals(expected), `round ${round}`);
    }
  });

  it('randomMaskKey gives 32-bit keys that differ across pool refills', () => {
    const keys = Array.from({ length: 5000 }, () => randomMaskKey());
    for (const k of keys) assert.ok(Number.isInteger(k) && k >= -0x80000000 && k <= 0x7fffffff);
    assert.ok(new Set(keys).size > 4990, 'keys repeat');
  });
});
