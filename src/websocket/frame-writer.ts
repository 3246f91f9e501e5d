/**
 * Frame writer (RFC 6455 §5.2): header encoding and a socket wrapper.
 *
 * Frames written together leave together: a *batch* runs from a writer's
 * first frame until the end of the socket read that caused it (see
 * `deliverRead`) or, for writes made outside any read (timers, HTTP
 * requests), until the end of the tick. Small frames are built with their
 * header into the batch's segment of a shared slab (see the arena below) and
 * the segment goes to the socket as one buffer when the batch ends; larger
 * frames are written as header + payload without copying the payload
 * (threshold: see SMALL_FRAME), with the socket corked until the batch ends.
 * So every frame of a batch leaves in one write or one writev. Client role
 * (§5.3) masks every frame with a fresh key and never mutates the caller's
 * buffer unless told it may.
 */
// The global `Buffer` is an accessor in Node 20 (a generic global load per use in hot code); the import is a plain binding.
import { Buffer } from 'node:buffer';
import type { Socket } from 'node:net';
import {
  OP_CLOSE, OP_PING, OP_PONG, MAX_CLOSE_REASON, CLOSE_NO_STATUS, isValidCloseCode,
} from './constants.js';
import { applyMask, randomMaskKey, xorKey, xorRangeIn } from './mask.js';

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
/** The slab as 32-bit words (it owns its backing store from byte 0): masking in it needs no view per frame. */
let slabWords = new Int32Array(slab.buffer, 0, SLAB_SIZE >>> 2);
/**
 * The slab's memory: a segment is handed to the socket as `Buffer.from(bytes,
 * start, length)`, not `slab.subarray(…)`, whose generic loads of the
 * prototype method and the `buffer`/`byteOffset` getters cost more than the view.
 */
let slabBytes = slab.buffer;
let slabPos = 0;

/**
 * Socket reads being delivered (nested: a delivery may run another, e.g. a
 * resumed parser), and the writers that opened a batch during them. A batch
 * opened while a read is delivered ends when the outermost delivery returns —
 * synchronously, without a tick callback or a cork: with one message in
 * flight (a chat message, a game move) each read carries one frame, and the
 * end-of-tick deferral and cork/uncork cost every such message without
 * batching anything.
 */
let deliveries = 0;
/** `readBatches[0, readBatchCount)`; the slots are reused, not the array truncated (setting `length` is a runtime call). */
const readBatches: (FrameWriter | null)[] = [];
let readBatchCount = 0;

/**
 * Run `deliver(target, input)` (a socket read handed to its parser) with the
 * frames it writes, on any writer, batched until it returns. `deliver` is
 * meant to be one module-level function: nothing is allocated per read.
 */
export function deliverRead<T, A>(deliver: (target: T, input: A) => void, target: T, input: A): void {
  deliveries++;
  try {
    deliver(target, input);
  } finally {
    if (--deliveries === 0 && readBatchCount > 0) endReadBatches();
  }
}

function endReadBatches(): void {
  // Ending a batch writes to a socket, which never delivers a read synchronously: the list does not grow meanwhile.
  const n = readBatchCount;
  readBatchCount = 0;
  for (let i = 0; i < n; i++) {
    const w = readBatches[i] as FrameWriter;
    readBatches[i] = null;
    endBatch(w);
  }
}

/** End of a batch: the segment to the socket, and what was corked behind it goes out as one writev. */
function endBatch(w: FrameWriter): void {
  // Already ended by flushNow (and no batch opened since): nothing of ours is left.
  if (!w.batching) return;
  w.batching = false;
  w.spill();
  w.release();
}

export class FrameWriter {
  readonly socket: Socket;
  /** Client role: every frame masked with a fresh key (RFC 6455 §5.3). */
  readonly masked: boolean;
  /** A batch is open (see the top of the file): ended by the read delivery or the tick it began in. */
  batching = false;
  /** We corked the socket for this batch (something was written to it directly): uncorked when the batch ends. */
  private corked = false;
  /** This tick's segment of small frames: bytes `[segStart, segEnd)` of a slab's memory, not yet given to the socket. */
  private segSlab: ArrayBuffer | null = null;
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
   * Frames written in one batch (a relay forwarding the 32 frames of one read,
   * an echo) leave in one writev instead of one write syscall each: measured
   * on the proxy benchmark (64 B × 50 connections) this is 2.9× the
   * messages/s, the write syscalls having been ~75 % of the gateway's CPU.
   */
  private batch(): void {
    if (this.batching) return;
    this.batching = true;
    if (deliveries > 0) readBatches[readBatchCount++] = this;
    else process.nextTick(endBatch, this);
  }

  /** Before writing to the socket directly during a batch: cork it, so the batch still leaves in one writev. */
  private hold(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
  }

  /** @internal The batch has ended: uncork what `hold` corked. */
  release(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  /**
   * Room for `n` bytes at the end of this writer's segment; returns the
   * offset in `slab` to build the frame at. A segment stays contiguous: when another
   * writer took the slab's tail meanwhile, or the slab is full, the segment so
   * far goes to the socket and a new one starts.
   */
  private reserve(n: number): number {
    if (this.segSlab !== null && (this.segSlab !== slabBytes || this.segEnd !== slabPos || slabPos + n > SLAB_SIZE)) this.spill();
    if (slabPos + n > SLAB_SIZE) {
      slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      slabBytes = slab.buffer;
      slabWords = new Int32Array(slabBytes, 0, SLAB_SIZE >>> 2);
      slabPos = 0;
    }
    const at = slabPos;
    slabPos += n;
    if (this.segSlab === null) {
      this.segSlab = slabBytes;
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
    // Spilled before the batch ends (a large frame follows, the slab ran out, end()): the rest joins it.
    if (this.batching) this.hold();
    if (socket.writableLength === 0) {
      socket.write(Buffer.from(seg, start, end - start));
      return;
    }
    // The socket is already queueing (a peer reading slower than we write,
    // or large frames of this tick): what it is given may stay a while. Give
    // it an exact-size copy, so that a slow reader holds its own bytes and not
    // the 16 KiB slabs its small frames were built in (a view would pin a
    // whole slab for a 10-byte reply).
    const copy = Buffer.allocUnsafeSlow(end - start);
    copy.set(new Uint8Array(seg, start, end - start));
    socket.write(copy);
  }

  /**
   * A small frame into the batch's segment: header (with `key` when
   * `masked`), then the payload copied and, on the way, XORed with `xorWith`
   * (0: as it is) — the frame's own key, or a relay's old key and new key in
   * one (the payload arrives masked with the client's key).
   */
  private writeSmall(opcode: number, payload: Buffer, fin: boolean, masked: boolean, key: number, xorWith: number): boolean {
    const len = payload.length;
    const at = this.reserve(headerLength(len, masked) + len);
    const buf = slab;
    const h = at + writeHeaderAt(buf, at, opcode, fin, len, masked, key);
    // TypedArray#set, not Buffer#copy: the same memmove without copy's argument handling in JS.
    buf.set(payload, h);
    if (xorWith !== 0) xorRangeIn(buf, slabWords, 0, h, h + len, xorWith >>> 24, (xorWith >>> 16) & 0xff, (xorWith >>> 8) & 0xff, xorWith & 0xff);
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
    if (len <= SMALL_FRAME) return this.writeSmall(opcode, payload, fin, masked, key, key);
    if (masked) {
      // Masking is copy-and-mask: the caller's buffer stays intact.
      const buf = Buffer.allocUnsafe(headerLength(len, true) + len);
      const h = writeHeaderAt(buf, 0, opcode, fin, len, true, key);
      payload.copy(buf, h);
      xorKey(buf, h, h + len, key);
      this.batch();
      this.hold();
      this.spill();
      this.socket.write(buf);
      return this.afterWrite();
    }
    return this.writeLarge(opcode, payload, fin, false, 0);
  }

  /**
   * Relay variant: `payload` is the caller's to give up; it is currently masked
   * with `fromMask` (or plain when null) and is transformed in one pass to the
   * mask this frame needs (a fresh key in client role, none in server role):
   * IN PLACE when large, while it is copied into the segment when small (the
   * caller must not read it afterwards either way).
   */
  writeFrameRemasked(opcode: number, payload: Buffer, fin: boolean, fromMask: Buffer | null, fromOffset = 0): boolean {
    const len = payload.length;
    const masked = this.masked;
    const key = masked ? randomMaskKey() : 0;
    const o = fromOffset & 3;
    // The old key as a number, rotated to fromOffset (0: plain).
    const from = fromMask === null ? 0
      : (fromMask[o] << 24) | (fromMask[(o + 1) & 3] << 16) | (fromMask[(o + 2) & 3] << 8) | fromMask[(o + 3) & 3];
    // One pass: XOR with (old key ^ new key) — into the segment for a small
    // frame (copied anyway), in place for a large one (not copied).
    if (len <= SMALL_FRAME) return this.writeSmall(opcode, payload, fin, masked, key, from ^ key);
    if (masked) xorKey(payload, 0, len, from ^ key);
    else if (fromMask !== null) applyMask(payload, fromMask, 0, len, fromOffset);
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
    this.hold();
    this.spill();
    this.socket.write(header);
    this.socket.write(payload);
    return this.afterWrite();
  }

  /**
   * Send what the batch holds now (see FLUSH_AT). The batch stays open: its
   * end still comes (read delivered, or tick), so no cork is ever left behind.
   */
  private flushNow(): void {
    this.spill();
    this.release();
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

