/**
 * The masking XOR (RFC 6455 §5.3) for large payloads, 16 bytes per
 * instruction with WebAssembly SIMD.
 *
 * Why: in JavaScript the word loop of `mask.ts` costs ~11 instructions per
 * 4 bytes (callgrind, Node 20: 11.5 k per 4 KiB), a sixth of everything the
 * proxy spends on a 4 KiB round trip. Here the payload is copied into the
 * module's memory (a memmove), XORed there and copied back: ~3 k for 4 KiB
 * (bench/RESULTS.md, "Proxy with one message in flight"). Below `SIMD_MIN`
 * the copies cost more than they save, and `mask.ts` keeps its own loop.
 *
 * The module, 98 bytes, spelled out below. Its text form:
 *
 *   (module
 *     (memory (export "m") 1)                       ;; one 64 KiB page, never grown
 *     (func (export "x") (param $p i32) (param $n i32) (param $k i32)
 *       (local $kv v128) (local $end i32)
 *       (local.set $kv (i32x4.splat (local.get $k)))   ;; the key word, four times
 *       (local.set $end (i32.add (local.get $p) (local.get $n)))
 *       (block (loop
 *         (br_if 1 (i32.ge_u (local.get $p) (local.get $end)))
 *         (v128.store (local.get $p) (v128.xor (v128.load (local.get $p)) (local.get $kv)))
 *         (local.set $p (i32.add (local.get $p) (i32.const 16)))
 *         (br 0)))))
 *
 * It XORs whole 16-byte blocks: up to 15 bytes past `$n` are XORed too, which
 * is harmless because they are scratch, never copied back.
 */

const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  0x01, 0x07, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x00, // types: (i32 i32 i32) -> ()
  0x03, 0x02, 0x01, 0x00, // functions: one, of type 0
  0x05, 0x03, 0x01, 0x00, 0x01, // memory: one, 1 page minimum, no maximum
  0x07, 0x09, 0x02, 0x01, 0x6d, 0x02, 0x00, 0x01, 0x78, 0x00, 0x00, // exports: "m" memory 0, "x" function 0
  0x0a, 0x3b, 0x01, 0x39, // code: one body of 57 bytes
  0x02, 0x01, 0x7b, 0x01, 0x7f, // locals: one v128 ($kv = 3), one i32 ($end = 4)
  0x20, 0x02, 0xfd, 0x11, 0x21, 0x03, // $kv = i32x4.splat($k)
  0x20, 0x00, 0x20, 0x01, 0x6a, 0x21, 0x04, // $end = $p + $n
  0x02, 0x40, 0x03, 0x40, // block, loop
  0x20, 0x00, 0x20, 0x04, 0x4f, 0x0d, 0x01, // br_if 1 ($p >= $end)
  0x20, 0x00, 0x20, 0x00, 0xfd, 0x00, 0x04, 0x00, // address $p; v128.load $p
  0x20, 0x03, 0xfd, 0x51, 0xfd, 0x0b, 0x04, 0x00, // v128.xor $kv; v128.store
  0x20, 0x00, 0x41, 0x10, 0x6a, 0x21, 0x00, // $p += 16
  0x0c, 0x00, 0x0b, 0x0b, 0x0b, // br 0; end loop, block, function
]);

/** From this many bytes on, `mask.ts` hands the XOR to `xorSimd` (when WebAssembly SIMD is there). */
export const SIMD_MIN = 2048;

/** Bytes per pass through the scratch: a multiple of 4 (the key's rotation goes on) and of 16, with room for the round-up. */
const CHUNK = 32 * 1024;

interface Simd {
  xor(p: number, n: number, key: number): void;
  scratch: Buffer;
}

/** The few WebAssembly names used here: the project's TypeScript lib (ES2023, no DOM) does not declare them. */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

function instantiate(): Simd | null {
  // Absent under --jitless; a CPU without the SIMD instructions fails validation.
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined || !wasm.validate(MODULE)) return null;
  try {
    const { exports } = new wasm.Instance(new wasm.Module(MODULE));
    const memory = (exports.m as { buffer: ArrayBuffer }).buffer;
    return { xor: exports.x as Simd['xor'], scratch: Buffer.from(memory, 0, memory.byteLength) };
  } catch {
    return null;
  }
}

const simd = instantiate();

/** Whether `xorSimd` may be called (WebAssembly SIMD is available). */
export const simdAvailable = simd !== null;

// The exact-length view of the scratch last copied back from: payloads of one
// size in a row (the usual case) reuse it instead of making a view each.
let backLength = -1;
let backView: Buffer = Buffer.alloc(0);

function scratchHead(n: number, scratch: Buffer): Buffer {
  if (n !== backLength) {
    backLength = n;
    backView = scratch.subarray(0, n);
  }
  return backView;
}

/**
 * XOR `buf[start, end)` in place with the key k0..k3 (k0 applies to `start`).
 * Only when `simdAvailable`.
 */
export function xorSimd(buf: Uint8Array, start: number, end: number, k0: number, k1: number, k2: number, k3: number): void {
  const { xor, scratch } = simd as Simd;
  // The key as the little-endian word whose first byte is k0: the scratch starts each pass at offset 0.
  const key = k0 | (k1 << 8) | (k2 << 16) | (k3 << 24);
  for (let at = start; at < end; at += CHUNK) {
    const n = Math.min(CHUNK, end - at);
    // A whole buffer is copied as it is: no view of it to make.
    scratch.set(at === 0 && n === buf.length ? buf : buf.subarray(at, at + n), 0);
    xor(0, n, key);
    buf.set(scratchHead(n, scratch), at);
  }
}
