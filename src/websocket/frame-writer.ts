/**
 * Frame writer (RFC 6455 §5.2): header encoding and a socket wrapper.
 *
 * Small frames are copied with their header into one buffer; larger frames are
 * written as header + payload without copying the payload (threshold: see
 * SMALL_FRAME). Either way the socket stays corked until the end of the tick,
 * so every frame written in one tick leaves in one writev. Client role (§5.3)
 * masks every frame with a fresh key and never mutates the caller's buffer
 * unless told it may.
 */
import type { Socket } from 'node:net';
import {
  OP_CLOSE, OP_PING, OP_PONG, MAX_CLOSE_REASON, CLOSE_NO_STATUS, isValidCloseCode,
} from './constants.js';
import { applyMask, randomMaskKey, xorRange } from './mask.js';

/**
 * Up to this payload size an unmasked frame is copied into one buffer with
 * its header; above it, header + payload are two entries of the tick's writev.
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
 * Write a frame header into `buf` at 0; returns the header length. `masked`
 * adds the masking key `key` (key byte 0 in the top byte of the number).
 */
function writeHeader(buf: Buffer, opcode: number, fin: boolean, len: number, masked: boolean, key: number): number {
  buf[0] = (fin ? 0x80 : 0) | opcode;
  const m = masked ? 0x80 : 0;
  let p: number;
  if (len < 126) {
    buf[1] = m | len;
    p = 2;
  } else if (len < 0x10000) {
    buf[1] = m | 126;
    buf[2] = len >>> 8;
    buf[3] = len & 0xff;
    p = 4;
  } else {
    buf[1] = m | 127;
    const hi = Math.floor(len / 0x100000000);
    buf.writeUInt32BE(hi, 2);
    buf.writeUInt32BE(len >>> 0, 6);
    p = 10;
  }
  if (masked) {
    buf[p] = key >>> 24;
    buf[p + 1] = (key >>> 16) & 0xff;
    buf[p + 2] = (key >>> 8) & 0xff;
    buf[p + 3] = key & 0xff;
    p += 4;
  }
  return p;
}

/** Encode a frame header (minimal length encoding, §5.2). */
export function encodeHeader(opcode: number, fin: boolean, payloadLength: number, mask?: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(headerLength(payloadLength, mask !== undefined));
  writeHeader(buf, opcode, fin, payloadLength, mask !== undefined, mask === undefined ? 0 : mask.readInt32BE(0));
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

/** End of the tick: everything written since `batch()` goes out as one writev. */
function flushBatch(w: FrameWriter): void {
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

  constructor(socket: Socket, masked: boolean) {
    this.socket = socket;
    this.masked = masked;
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
   * Write one frame. `masked` overrides the writer's role default (tests);
   * the caller's `payload` is never modified. Returns socket.write's result.
   */
  writeFrame(opcode: number, payload: Buffer, fin: boolean, masked: boolean = this.masked): boolean {
    const len = payload.length;
    // A number, not a 4-byte view: no allocation per frame for the key.
    const key = masked ? randomMaskKey() : 0;
    const socket = this.socket;
    if (len <= SMALL_FRAME || masked) {
      // One buffer, one write. Masking is copy-and-mask: the caller's buffer
      // stays intact.
      const buf = Buffer.allocUnsafe(headerLength(len, masked) + len);
      const h = writeHeader(buf, opcode, fin, len, masked, key);
      payload.copy(buf, h);
      if (masked) xorRange(buf, h, h + len, key >>> 24, (key >>> 16) & 0xff, (key >>> 8) & 0xff, key & 0xff);
      this.batch();
      const ok = socket.write(buf);
      if (socket.writableLength >= FLUSH_AT) this.flushNow();
      return ok;
    }
    // Header and payload join the tick's batch rather than a cork/uncork of
    // their own: a relay forwarding a read of several 4 KiB frames makes one
    // writev, not one per frame (proxy 4 KiB × 50: see bench/RESULTS.md).
    this.batch();
    socket.write(encodeHeader(opcode, fin, len, undefined));
    const ok = socket.write(payload);
    if (socket.writableLength >= FLUSH_AT) this.flushNow();
    return ok;
  }

  /**
   * Relay variant: `payload` is the caller's to give up; it is currently masked
   * with `fromMask` (or plain when null) and is transformed IN PLACE in one pass
   * to the mask this frame needs (a fresh key in client role, none in server role).
   */
  writeFrameRemasked(opcode: number, payload: Buffer, fin: boolean, fromMask: Buffer | null, fromOffset = 0): boolean {
    const len = payload.length;
    const socket = this.socket;
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
    if (len <= SMALL_FRAME) {
      const buf = Buffer.allocUnsafe(headerLength(len, masked) + len);
      const h = writeHeader(buf, opcode, fin, len, masked, key);
      payload.copy(buf, h);
      this.batch();
      const ok = socket.write(buf);
      if (socket.writableLength >= FLUSH_AT) this.flushNow();
      return ok;
    }
    this.batch();
    const header = Buffer.allocUnsafe(headerLength(len, masked));
    writeHeader(header, opcode, fin, len, masked, key);
    socket.write(header);
    const ok = socket.write(payload);
    if (socket.writableLength >= FLUSH_AT) this.flushNow();
    return ok;
  }

  /**
   * End the batch now (see FLUSH_AT). The end-of-tick flush still runs: it
   * ends whatever batch is open then, so no cork is ever left behind.
   */
  private flushNow(): void {
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

