/**
 * Frame writer (RFC 6455 §5.2): header encoding and a socket wrapper.
 *
 * Small frames are built with their header into the tick's segment of a shared
 * slab (see the arena below); larger frames are written as header + payload
 * without copying the payload (threshold: see SMALL_FRAME). Either way the
 * socket stays corked until the end of the tick, so every frame written in one
 * tick leaves in one writev. Client role (§5.3)
 * masks every frame with a fresh key and never mutates the caller's buffer
 * unless told it may.
 */
import type { Socket } from 'node:net';
import {
  OP_CLOSE, OP_PING, OP_PONG, MAX_CLOSE_REASON, CLOSE_NO_STATUS, isValidCloseCode,
} from './constants.js';
import { applyMask, randomMaskKey, xorKey, xorRange } from './mask.js';

/**
 * Up to this payload size a frame is copied with its header into the tick's
 * segment; above it, header + payload are two entries of the tick's writev.
 * Measured on loopback (Node 20, 8 MiB of frames, best of 5): one copied write
 * wins below ~1 KiB (64 B: 0.85×, 256 B: 0.92× the time of writev), they tie
 * at 1 KiB, and writev wins from 2 KiB (4 KiB: copy takes 1.2×).
 * Masked frames (client role) are always built in one buffer: the payload has
 * to be copied to be masked anyway, so the header rides along for free.
 */
export const SMALL_FRAME = 1024;

/**
 * A tick's batch that reaches this many queued bytes is flushed at once
 * instead of at the end of the tick. Left corked, a 64 KiB piece (one socket
 * read of a large message) would sit above the connection's default
 * high-water mark (64 KiB) until the end of the tick, so every piece would
 * pause and resume the sender (echo 256 KiB × 50: 239 → 492 µs CPU per
 * message); flushed, the kernel takes it at once as before. Batches of small
 * and mid-sized frames (a read's worth) stay one writev.
 */
export const FLUSH_AT = 64 * 1024;

function headerLength(payloadLength: number, masked: boolean): number {
  return (payloadLength < 126 ? 2 : payloadLength < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/**
 * Write a frame header into `buf` at offset `o`; returns the header length.
 * `masked` adds the masking key `key` (key byte 0 in the top byte of the number).
 */
function writeHeaderAt(buf: Buffer, o: number, opcode: number, fin: boolean, len: number, masked: boolean, key: number): number {
  buf[o] = (fin ? 0x80 : 0) | opcode;
  const m = masked ? 0x80 : 0;
  let p: number;
  if (len < 126) {
    buf[o + 1] = m | len;
    p = 2;
  } else if (len < 0x10000) {
    buf[o + 1] = m | 126;
    buf[o + 2] = len >>> 8;
    buf[o + 3] = len & 0xff;
    p = 4;
  } else {
    buf[o + 1] = m | 127;
    const hi = Math.floor(len / 0x100000000);
    buf.writeUInt32BE(hi, o + 2);
    buf.writeUInt32BE(len >>> 0, o + 6);
    p = 10;
  }
  if (masked) {
    buf[o + p] = key >>> 24;
    buf[o + p + 1] = (key >>> 16) & 0xff;
    buf[o + p + 2] = (key >>> 8) & 0xff;
    buf[o + p + 3] = key & 0xff;
    p += 4;
  }
  return p;
}

/** Encode a frame header (minimal length encoding, §5.2). */
export function encodeHeader(opcode: number, fin: boolean, payloadLength: number, mask?: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(headerLength(payloadLength, mask !== undefined));
  writeHeaderAt(buf, 0, opcode, fin, payloadLength, mask !== undefined, mask === undefined ? 0 : mask.readInt32BE(0));
  return buf;
}

/** Close payload: 2-byte code + reason truncated to 123 bytes on a UTF-8 boundary. */
export function encodeClosePayload(code: number | undefined, reason = ''): Buffer {
  if (code === undefined || code === CLOSE_NO_STATUS) return Buffer.alloc(0);
  // RFC 6455 §7.4: 1004/1005/1006/1015 and unassigned codes are never sent.
  if (!isValidCloseCode(code)) throw new RangeError(`invalid close code ${code}`);
  let r = Buffer.from(reason, 'utf8');
  if (r.length > MAX_CLOSE_REASON) {
    let end = MAX_CLOSE_REASON;
    while (end > 0 && (r[end] & 0xc0) === 0x80) end--; // do not cut a code point
    r = r.subarray(0, end);
  }
  const buf = Buffer.allocUnsafe(2 + r.length);
  buf.writeUInt16BE(code, 0);
  r.copy(buf, 2);
  return buf;
}

/**
 * Small frames of a tick are built straight into a shared slab (the arena):
 * each writer's frames of the tick form one contiguous segment, written to
 * the socket as ONE buffer when the tick ends (or earlier, see `spill`). Before,
 * every small frame was its own Buffer and its own entry in the socket's
 * write queue: at 64 B through the proxy those were a third of the bytes the
 * gateway allocated (allocation profile, bench/RESULTS.md), so a third of its
 * young-generation collections. A new slab is taken when one is full; old ones
 * live as long as the writes that point into them — which is why slabs are
 * small (16 KiB) and a socket that is already queueing gets a copy (see
 * `spill`): a connection that stops reading holds its own bytes, not slabs.
 */
const SLAB_SIZE = 16 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let slabPos = 0;

/** End of the tick: everything written since `batch()` goes out as one writev. */
function flushBatch(w: FrameWriter): void {
  w.spill();
  // Already ended by flushNow (and no batch opened since): nothing of ours is corked.
  if (!w.batching) return;
  w.batching = false;
  w.socket.uncork();
}

export class FrameWriter {
  readonly socket: Socket;
  /** Client role: every frame masked with a fresh key (RFC 6455 §5.3). */
  readonly masked: boolean;
  /** The socket is corked until the end of the current tick. */
  batching = false;
  /** This tick's segment of small frames: `segSlab[segStart, segEnd)`, not yet given to the socket. */
  private segSlab: Buffer | null = null;
  private segStart = 0;
  private segEnd = 0;

  constructor(socket: Socket, masked: boolean) {
    this.socket = socket;
    this.masked = masked;
  }

  /** Bytes of frames written but still in this tick's segment (not yet in the socket's queue). */
  get pending(): number {
    return this.segEnd - this.segStart;
  }

  /**
   * Frames written in one tick (a relay forwarding the 32 frames of one read,
   * an echo) leave in one writev instead of one write syscall each: measured
   * on the proxy benchmark (64 B × 50 connections) this is 2.9× the
   * messages/s, the write syscalls having been ~75 % of the gateway's CPU.
   */
  private batch(): void {
    if (this.batching) return;
    this.batching = true;
    this.socket.cork();
    process.nextTick(flushBatch, this);
  }

  /**
   * Room for `n` bytes at the end of this writer's segment; returns the
   * offset in `slab` to build the frame at. A segment stays contiguous: when another
   * writer took the slab's tail meanwhile, or the slab is full, the segment so
   * far goes to the socket and a new one starts.
   */
  private reserve(n: number): number {
    if (this.segSlab !== null && (this.segSlab !== slab || this.segEnd !== slabPos || slabPos + n > SLAB_SIZE)) this.spill();
    if (slabPos + n > SLAB_SIZE) {
      slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      slabPos = 0;
    }
    const at = slabPos;
    slabPos += n;
    if (this.segSlab === null) {
      this.segSlab = slab;
      this.segStart = at;
    }
    this.segEnd = slabPos;
    return at;
  }

  /**
   * Hand this tick's segment to the socket now (still corked: it joins the
   * same writev). Anything written to the socket directly — a large frame,
   * end() — must come after it, so the connection calls this before end().
   * A socket that has ended or been destroyed takes nothing more.
   */
  spill(): void {
    const seg = this.segSlab;
    if (seg === null) return;
    const start = this.segStart;
    const end = this.segEnd;
    this.segSlab = null;
    this.segStart = this.segEnd = 0;
    const socket = this.socket;
    if (socket.destroyed || socket.writableEnded) return;
    if (socket.writableLength === 0) {
      socket.write(seg.subarray(start, end));
      return;
    }
    // The socket is already queueing (a peer reading slower than we write,
    // or large frames of this tick): what it is given may stay a while. Give
    // it an exact-size copy, so that a slow reader holds its own bytes and not
    // the 16 KiB slabs its small frames were built in (a view would pin a
    // whole slab for a 10-byte reply).
    const copy = Buffer.allocUnsafeSlow(end - start);
    seg.copy(copy, 0, start, end);
    socket.write(copy);
  }

  /**
   * A small frame into the tick's segment: header, then the payload copied —
   * and masked with `key` on the way when `maskPayload` (a relay's payload
   * arrives already re-masked).
   */
  private writeSmall(opcode: number, payload: Buffer, fin: boolean, masked: boolean, key: number, maskPayload: boolean): boolean {
    const len = payload.length;
    const at = this.reserve(headerLength(len, masked) + len);
    const buf = slab;
    const h = at + writeHeaderAt(buf, at, opcode, fin, len, masked, key);
    payload.copy(buf, h);
    if (maskPayload) xorKey(buf, h, h + len, key);
    this.batch();
    return this.afterWrite();
  }

  /** After a write: flush a batch that got large (FLUSH_AT); report whether the socket wants more. */
  private afterWrite(): boolean {
    const socket = this.socket;
    const queued = socket.writableLength + this.pending;
    if (queued >= FLUSH_AT) this.flushNow();
    return queued < socket.writableHighWaterMark;
  }

  /**
   * Write one frame. `masked` overrides the writer's role default (tests);
   * the caller's `payload` is never modified. Returns whether the socket
   * is still under its high-water mark.
   */
  writeFrame(opcode: number, payload: Buffer, fin: boolean, masked: boolean = this.masked): boolean {
    const len = payload.length;
    // A number, not a 4-byte view: no allocation per frame for the key.
    const key = masked ? randomMaskKey() : 0;
    if (len <= SMALL_FRAME) return this.writeSmall(opcode, payload, fin, masked, key, masked);
    if (masked) {
      // Masking is copy-and-mask: the caller's buffer stays intact.
      const buf = Buffer.allocUnsafe(headerLength(len, true) + len);
      const h = writeHeaderAt(buf, 0, opcode, fin, len, true, key);
      payload.copy(buf, h);
      xorKey(buf, h, h + len, key);
      this.batch();
      this.spill();
      this.socket.write(buf);
      return this.afterWrite();
    }
    return this.writeLarge(opcode, payload, fin, false, 0);
  }

  /**
   * Relay variant: `payload` is the caller's to give up; it is currently masked
   * with `fromMask` (or plain when null) and is transformed IN PLACE in one pass
   * to the mask this frame needs (a fresh key in client role, none in server role).
   */
  writeFrameRemasked(opcode: number, payload: Buffer, fin: boolean, fromMask: Buffer | null, fromOffset = 0): boolean {
    const len = payload.length;
    const masked = this.masked;
    let key = 0;
    if (masked) {
      key = randomMaskKey();
      // One pass: XOR with (old key ^ new key), the old key taken from fromOffset on.
      const o = fromOffset & 3;
      const f0 = fromMask === null ? 0 : fromMask[o], f1 = fromMask === null ? 0 : fromMask[(o + 1) & 3];
      const f2 = fromMask === null ? 0 : fromMask[(o + 2) & 3], f3 = fromMask === null ? 0 : fromMask[(o + 3) & 3];
      xorRange(payload, 0, len, f0 ^ (key >>> 24), f1 ^ ((key >>> 16) & 0xff), f2 ^ ((key >>> 8) & 0xff), f3 ^ (key & 0xff));
    } else if (fromMask !== null) {
      applyMask(payload, fromMask, 0, len, fromOffset);
    }
    // Already (re)masked: a small one is copied into the segment as is.
    if (len <= SMALL_FRAME) return this.writeSmall(opcode, payload, fin, masked, key, false);
    return this.writeLarge(opcode, payload, fin, masked, key);
  }

  /**
   * A large frame whose payload is ready as is (plain, or already masked with
   * `key`): header and payload join the tick's batch, after the segment,
   * rather than a cork/uncork of their own — a relay forwarding a read of
   * several 4 KiB frames makes one writev, not one per frame (proxy 4 KiB × 50:
   * see bench/RESULTS.md). The payload is not copied.
   */
  private writeLarge(opcode: number, payload: Buffer, fin: boolean, masked: boolean, key: number): boolean {
    const header = Buffer.allocUnsafe(headerLength(payload.length, masked));
    writeHeaderAt(header, 0, opcode, fin, payload.length, masked, key);
    this.batch();
    this.spill();
    this.socket.write(header);
    this.socket.write(payload);
    return this.afterWrite();
  }

  /**
   * End the batch now (see FLUSH_AT). The end-of-tick flush still runs: it
   * ends whatever batch is open then, so no cork is ever left behind.
   */
  private flushNow(): void {
    this.spill();
    if (!this.batching) return;
    this.batching = false;
    this.socket.uncork();
  }

  writeClose(code?: number, reason = ''): boolean {
    return this.writeFrame(OP_CLOSE, encodeClosePayload(code, reason), true);
  }

  writePing(payload: Buffer): boolean {
    return this.writeFrame(OP_PING, payload, true);
  }

  writePong(payload: Buffer): boolean {
    return this.writeFrame(OP_PONG, payload, true);
  }
}

