/**
 * Masking (RFC 6455 §5.3): payload byte i is XORed with key[i mod 4].
 *
 * The middle of the range is processed as aligned 32-bit words through an
 * Int32Array view (native byte order; the key word is built in the same byte
 * order, so no endianness logic is needed); the unaligned head and tail go byte
 * by byte. `maskOffset` is the position within the key of the first byte, so a
 * payload that arrives in pieces can be unmasked piece by piece.
 */
import { randomFillSync } from 'node:crypto';

/** Below this length a plain byte loop is cheaper than creating a word view. */
const WORD_MIN = 32;

// Scratch used to assemble a rotated key word in native byte order. Signed:
// a Uint32 word at or above 2^31 is not a small integer for V8.
const keyBytes = new Uint8Array(4);
const keyWord = new Int32Array(keyBytes.buffer);
// Scratch holding the key in sequence, indexed by rotation.
const keySeq = new Uint8Array(4);
// Scratch for remask's combined key.
const combined = Buffer.alloc(4);

// The word view of the last ArrayBuffer masked. A view per call was an
// allocation per frame (10 % of the proxy's allocated bytes at 64 B); frames
// come from a few backing stores in turn (the Buffer pool, one socket read), so
// one cached view serves most of them.
let viewedBuffer: ArrayBufferLike | null = null;
let viewedWords = new Int32Array(0);

function wordsOf(ab: ArrayBuffer): Int32Array {
  if (ab !== viewedBuffer) {
    viewedBuffer = ab;
    viewedWords = new Int32Array(ab, 0, ab.byteLength >>> 2);
  }
  return viewedWords;
}

/**
 * XOR bytes [start, end) of `buf` in place with the key k0..k3, where k0
 * applies to `start`. Internal primitive shared by the parser (which keeps the
 * key as four numbers to stay allocation-free) and the public functions.
 */
export function xorRange(buf: Uint8Array, start: number, end: number, k0: number, k1: number, k2: number, k3: number): void {
  if (end - start >= WORD_MIN) {
    xorRangeIn(buf, wordsOf(buf.buffer as ArrayBuffer), buf.byteOffset, start, end, k0, k1, k2, k3);
    return;
  }
  for (let i = start, r = 0; i < end; i++, r++) {
    const m = r & 3;
    buf[i] ^= m === 0 ? k0 : m === 1 ? k1 : m === 2 ? k2 : k3;
  }
}

/**
 * `xorRange` for a caller that holds a word view of `buf`'s whole backing
 * store already (the frame writer's slab) and knows `buf.byteOffset`
 * (`base`): neither the `buffer` getter (a call into C++), the `byteOffset`
 * getter (a builtin call each, counted under callgrind) nor the view cache is
 * touched per frame.
 */
export function xorRangeIn(
  buf: Uint8Array, view: Int32Array, base: number, start: number, end: number, k0: number, k1: number, k2: number, k3: number,
): void {
  let i = start;
  if (end - start >= WORD_MIN) {
    // Byte-wise up to a 4-byte aligned address.
    const headEnd = start + ((4 - ((base + start) & 3)) & 3);
    let r = 0; // rotation of the key reached after the head
    for (; i < headEnd; i++, r++) {
      buf[i] ^= r === 0 ? k0 : r === 1 ? k1 : r === 2 ? k2 : k3;
    }
    // Key word for the aligned middle, starting at rotation r.
    const ks = keySeq;
    ks[0] = k0; ks[1] = k1; ks[2] = k2; ks[3] = k3;
    keyBytes[0] = ks[r & 3];
    keyBytes[1] = ks[(r + 1) & 3];
    keyBytes[2] = ks[(r + 2) & 3];
    keyBytes[3] = ks[(r + 3) & 3];
    const word = keyWord[0];
    const words = (end - i) >>> 2;
    // Four words per iteration: 4 KiB in ~0.6 µs instead of ~1.2 µs (Node 20,
    // measured in process; the loop overhead, not the XOR, was the cost).
    let w = (base + i) >>> 2;
    const stop = w + words;
    for (const last4 = stop - 3; w < last4; w += 4) {
      view[w] ^= word;
      view[w + 1] ^= word;
      view[w + 2] ^= word;
      view[w + 3] ^= word;
    }
    for (; w < stop; w++) view[w] ^= word;
    i += words << 2;
    // Tail continues at the same rotation (the middle is a multiple of 4).
    for (let t = r; i < end; i++, t++) buf[i] ^= ks[t & 3];
    return;
  }
  for (let r = 0; i < end; i++, r++) {
    const m = r & 3;
    buf[i] ^= m === 0 ? k0 : m === 1 ? k1 : m === 2 ? k2 : k3;
  }
}

/** `xorRange` with the key as one 32-bit number, key byte 0 in the top byte (the writer's and parser's form). */
export function xorKey(buf: Uint8Array, start: number, end: number, key: number): void {
  xorRange(buf, start, end, key >>> 24, (key >>> 16) & 0xff, (key >>> 8) & 0xff, key & 0xff);
}

/**
 * Mask or unmask `buf[start, end)` in place with a 4-byte `mask`; the first
 * byte uses `mask[maskOffset % 4]`.
 */
export function applyMask(buf: Buffer, mask: Buffer, start = 0, end = buf.length, maskOffset = 0): void {
  const o = maskOffset & 3;
  xorRange(buf, start, end, mask[o], mask[(o + 1) & 3], mask[(o + 2) & 3], mask[(o + 3) & 3]);
}

/**
 * Single pass unmask-and-remask for relays: `buf[start, end)` is masked with
 * `fromMask` (at `fromOffset`), or plain when `fromMask` is null; afterwards
 * it is masked with `toMask` (at `toOffset`). XOR with fromMask^toMask.
 */
export function remask(
  buf: Buffer, fromMask: Buffer | null, toMask: Buffer, start = 0, end = buf.length, fromOffset = 0, toOffset = 0,
): void {
  for (let j = 0; j < 4; j++) {
    combined[j] = (fromMask === null ? 0 : fromMask[(fromOffset + j) & 3]) ^ toMask[(toOffset + j) & 3];
  }
  xorRange(buf, start, end, combined[0], combined[1], combined[2], combined[3]);
}

// Masking keys come from a pooled CSPRNG buffer (RFC 6455 §5.3 and §10.3: a
// fresh, unpredictable key per frame). When the pool is spent a NEW pool is
// allocated rather than refilled, so keys handed out earlier never change.
const POOL_SIZE = 8192;
let pool = Buffer.allocUnsafeSlow(POOL_SIZE);
let poolPos = POOL_SIZE;

/** Offset of 4 fresh random bytes in `pool` (refilled as a NEW pool when spent). */
function takeKeyBytes(): number {
  if (poolPos + 4 > POOL_SIZE) {
    pool = randomFillSync(Buffer.allocUnsafeSlow(POOL_SIZE));
    poolPos = 0;
  }
  const at = poolPos;
  poolPos += 4;
  return at;
}

/**
 * A fresh random masking key as one 32-bit number, key byte 0 in the top
 * byte: what the writer needs, without the 4-byte view `randomMask` allocates.
 */
export function randomMaskKey(): number {
  return pool.readInt32BE(takeKeyBytes());
}

/** A fresh random 4-byte masking key (a view into the pool; never rewritten). */
export function randomMask(): Buffer {
  const at = takeKeyBytes();
  return pool.subarray(at, at + 4);
}
