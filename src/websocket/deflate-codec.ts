/**
 * The per-message transform of permessage-deflate (RFC 7692 §7.2) for one
 * connection: a decompressor for what arrives and a compressor, with its
 * ordered send queue, for what leaves. The negotiation that configures them
 * is permessage-deflate.ts; every zlib operation waits its turn in the
 * gateway's one queue (zlib-pool.ts).
 *
 * Decompression is bounded chunk by chunk (16 KiB of output at a time): the
 * inflated size is counted as zlib produces it, and a message that passes
 * `maxMessage` is refused (1009) at once, having held at most the limit plus
 * one chunk; text is UTF-8 checked on the inflated bytes (1007 at the first
 * invalid chunk); undecodable data is 1007. A paused consumer pauses the
 * decompressor too (it stops within a chunk) and gives its queue slot back,
 * so a slow reader never holds zlib work of other connections.
 *
 * Compression keeps message order: a message below the threshold waits
 * behind compressed ones still in the queue, and so does a Close. With no
 * context takeover on our side each piece of a streamed message is compressed
 * on its own (independent sync-flushed deflate streams concatenate into a
 * valid one), so a message that streams slowly never holds a compressor.
 */
import zlib from 'node:zlib';
import { CLOSE_INVALID_PAYLOAD, CLOSE_TOO_BIG, OP_BINARY, OP_CONT, OP_TEXT } from './constants.js';
import { Utf8Validator } from './utf8.js';
import type { FrameWriter } from './frame-writer.js';
import type { DeflateOptions } from './permessage-deflate.js';
import { giveDeflater, giveInflater, newDeflater, newInflater, takeDeflater, takeInflater, zlibQueue, zlibStats, ZLIB_CHUNK, type ZlibJob } from './zlib-pool.js';

/** RFC 7692 §6: the "Per-Message Compressed" bit (RSV1), on the first frame of a compressed message only. */
export const RSV1 = 0x40;

/** §7.2.1/§7.2.2: a sync flush ends with these four octets; the sender removes them, the receiver appends them. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/**
 * The payload of a compressed last piece that adds no data after an earlier
 * piece's sync flush: the first octet of an empty stored block, which the
 * receiver's appended TRAILER completes (§7.2.3.6, an empty fragment).
 */
const EMPTY_STORED_BLOCK = Buffer.from([0x00]);
const EMPTY = Buffer.alloc(0);

/** A zlib context's current user, found by the listeners (module-level functions: no closure per context). */
const kOwner = Symbol('gatehouse.deflate.owner');
type OwnedInflate = zlib.InflateRaw & { [kOwner]?: MessageInflater | null };
type OwnedDeflate = zlib.DeflateRaw & { [kOwner]?: MessageDeflater | null };

function onInflateData(this: OwnedInflate, chunk: Buffer): void {
  this[kOwner]?.onChunk(this, chunk);
}
function onInflateError(this: OwnedInflate, err: Error): void {
  this[kOwner]?.onZlibError(this, err);
}
function onDeflateData(this: OwnedDeflate, chunk: Buffer): void {
  this[kOwner]?.onChunk(this, chunk);
}
function onDeflateError(this: OwnedDeflate, err: Error): void {
  this[kOwner]?.onZlibError(this, err);
}

/** What the decompressor reports to its connection. */
export interface InflateSink {
  /** Plain data of the message (checked so far), or — passing compressed — the compressed piece, checked. */
  onInflated(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void;
  /** The piece is done: the connection may read on. */
  onInflateIdle(): void;
  /** The message is refused: fail the connection with this code. */
  onInflateError(code: number, reason: string): void;
}

// MessageInflater states.
const I_IDLE = 0;
const I_QUEUED = 1; // waiting for a queue slot
const I_RUNNING = 2; // zlib at work, holding a slot
const I_SUSPENDED = 3; // paused by the consumer mid-piece, slot given back
const I_RESUMING = 4; // resumed, waiting for a slot to go on
const I_FAILED = 5;

export class MessageInflater implements ZlibJob {
  /**
   * Hand the consumer the compressed pieces themselves once each is checked
   * (a relay passing compressed frames on), not the plain data.
   */
  passCompressed = false;

  private z: OwnedInflate | null = null;
  private state = I_IDLE;
  private release: (() => void) | null = null;
  private consumerPaused = false;
  /** zlib has taken the whole piece; its last output may still wait in the stream for a paused consumer. */
  private zlibDone = false;
  /** Each piece gets a number: a late zlib callback of an abandoned piece is recognised and ignored. */
  private op = 0;

  // The message.
  private total = 0;
  private utf8: Utf8Validator | null = null;
  private delivered = false;
  /** The last inflated chunk, delivered when the next one arrives or the piece ends (so the last carries `fin`). */
  private held: Buffer | null = null;

  // The piece being decompressed.
  private piece: Buffer = EMPTY;
  private isBinary = false;
  private fin = false;

  constructor(private readonly options: DeflateOptions, private readonly maxMessage: number, private readonly sink: InflateSink) {}

  /** No message is open and no zlib context is held: the object can be dropped. */
  get resting(): boolean {
    return this.state === I_IDLE && this.z === null;
  }

  /** Decompress one piece of a compressed message (the connection waits for `onInflateIdle` before the next). */
  write(piece: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (this.state === I_FAILED) return;
    if (first) {
      this.total = 0;
      this.delivered = false;
      this.held = null;
      if (!isBinary) (this.utf8 ??= new Utf8Validator()).reset();
    }
    this.piece = piece;
    this.isBinary = isBinary;
    this.fin = fin;
    this.state = I_QUEUED;
    zlibQueue.add(this);
  }

  cancelled(): boolean {
    return this.state === I_FAILED;
  }

  run(done: () => void): void {
    this.release = done;
    if (this.state === I_RESUMING) {
      this.state = I_RUNNING;
      if (this.consumerPaused) return this.suspend();
      this.z?.resume();
      this.maybeComplete();
      return;
    }
    this.state = I_RUNNING;
    this.zlibDone = false;
    const z = this.context();
    const op = ++this.op;
    const written = (err?: Error | null): void => this.written(op, err);
    const piece = this.piece;
    zlibStats.inflatedIn += piece.length;
    // §7.2.2: append 0x00 0x00 0xff 0xff to the message's payload, then inflate.
    if (!this.fin) z.write(piece, written);
    else if (piece.length <= ZLIB_CHUNK) z.write(piece.length === 0 ? TRAILER : Buffer.concat([piece, TRAILER]), written);
    else {
      z.write(piece);
      z.write(TRAILER, written);
    }
    if (this.consumerPaused) this.suspend();
  }

  private context(): OwnedInflate {
    let z = this.z;
    if (z === null) {
      const bits = this.options.inflateWindowBits;
      // Context takeover (§7.1.1.2 not agreed): this connection's own context, kept between messages.
      z = (this.options.keepInflater ? newInflater(bits) : takeInflater(bits)) as OwnedInflate;
      if (z[kOwner] === undefined) {
        z.on('data', onInflateData);
        z.on('error', onInflateError);
      }
      z[kOwner] = this;
      this.z = z;
    }
    if (z.isPaused() && !this.consumerPaused) z.resume();
    else if (this.consumerPaused) z.pause();
    return z;
  }

  /** @internal zlib listener: one chunk of output. */
  onChunk(z: OwnedInflate, chunk: Buffer): void {
    if (z !== this.z || this.state === I_FAILED) return;
    this.total += chunk.length;
    zlibStats.inflatedOut += chunk.length;
    // Checked per chunk: never more than the limit plus one chunk.
    if (this.total > this.maxMessage) return this.fail(CLOSE_TOO_BIG, 'message too big (inflated)');
    // RFC 6455 §8.1 on the inflated text, chunk by chunk.
    if (!this.isBinary && !(this.utf8 as Utf8Validator).update(chunk, 0, chunk.length)) {
      return this.fail(CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in text message');
    }
    if (!this.passCompressed) {
      const held = this.held;
      this.held = chunk;
      if (held !== null) this.deliver(held, false);
    }
    if (this.zlibDone) this.maybeComplete();
  }

  /** @internal zlib listener: the data is not a valid deflate stream. */
  onZlibError(z: OwnedInflate, _err: Error): void {
    if (z !== this.z) return;
    this.z = null; // zlib closes a context after an error
    if (this.state !== I_FAILED) this.fail(CLOSE_INVALID_PAYLOAD, 'invalid compressed data');
  }

  private written(op: number, err?: Error | null): void {
    if (op !== this.op || this.state === I_FAILED) return;
    if (err) return this.fail(CLOSE_INVALID_PAYLOAD, 'invalid compressed data');
    this.zlibDone = true;
    this.maybeComplete();
  }

  /**
   * The piece is done once zlib has taken it all and its output has all been
   * seen: a consumer that paused mid-piece leaves output waiting in the
   * stream, delivered (and this called again) when it resumes.
   */
  private maybeComplete(): void {
    const z0 = this.z;
    if (!this.zlibDone || this.consumerPaused || this.state === I_FAILED || (z0 !== null && z0.readableLength > 0)) return;
    this.zlibDone = false;
    if (this.fin && !this.isBinary && !(this.utf8 as Utf8Validator).finish()) {
      return this.fail(CLOSE_INVALID_PAYLOAD, 'truncated UTF-8 at end of text message');
    }
    const z = this.z as OwnedInflate;
    if (streamEnded(z)) {
      // The peer ended its deflate stream (a BFINAL block): this context can take no more.
      z[kOwner] = null;
      z.close();
      this.z = null;
    } else if (this.fin && !this.options.keepInflater) {
      z[kOwner] = null;
      giveInflater(z, this.options.inflateWindowBits);
      this.z = null;
    }
    this.state = I_IDLE;
    this.giveSlot();
    const piece = this.piece;
    this.piece = EMPTY;
    if (this.passCompressed) this.deliver(piece, this.fin);
    else if (this.fin) {
      const last = this.held ?? EMPTY;
      this.held = null;
      this.deliver(last, true);
    } else if (this.held !== null) {
      const held = this.held;
      this.held = null;
      this.deliver(held, false);
    }
    this.sink.onInflateIdle();
  }

  private deliver(data: Buffer, fin: boolean): void {
    const first = !this.delivered;
    this.delivered = true;
    this.sink.onInflated(data, this.isBinary, first, fin);
  }

  /** The consumer is full: zlib stops within a chunk and the queue slot goes to others. */
  pause(): void {
    this.consumerPaused = true;
    this.z?.pause();
    if (this.state === I_RUNNING) this.suspend();
  }


  resume(): void {
    this.consumerPaused = false;
    if (this.state === I_SUSPENDED) {
      this.state = I_RESUMING;
      zlibQueue.add(this);
    }
  }

  private suspend(): void {
    this.state = I_SUSPENDED;
    this.giveSlot();
  }

  private giveSlot(): void {
    const release = this.release;
    this.release = null;
    release?.();
  }

  private fail(code: number, reason: string): void {
    this.state = I_FAILED;
    this.held = null;
    this.dropContext();
    this.giveSlot();
    this.sink.onInflateError(code, reason);
  }

  /** A context in the middle of a message (or failed) is never reused. */
  private dropContext(): void {
    const z = this.z;
    this.z = null;
    if (z === null) return;
    z[kOwner] = null;
    z.close();
  }

  /**
   * The connection is gone: release everything, run nothing more. A context
   * still held is mid-message or this connection's own: closed, not reused.
   */
  destroy(): void {
    this.state = I_FAILED;
    this.held = null;
    this.piece = EMPTY;
    this.dropContext();
    this.giveSlot();
  }
}

/** What the compressor reports to its connection. */
export interface DeflateSink {
  /** Compressed bytes left the queue (for backpressure accounting). */
  onDeflated(): void;
  /** zlib failed (should not happen): the connection is closed with 1011. */
  onDeflateError(err: Error): void;
}

/** One entry of the send queue. */
interface OutItem {
  data: Buffer;
  /** Opcode with RSV1 already set when this is the first frame of a compressed message. */
  opcode: number;
  fin: boolean;
  /** Compress `data` (else it is written as it is). */
  compress: boolean;
  /** Instead of a frame: run this when the queue reaches it (a Close, the end of the socket). */
  then?: () => void;
}

export class MessageDeflater implements ZlibJob {
  /** Bytes waiting in the queue, not yet given to the socket. */
  queuedBytes = 0;

  private readonly items: OutItem[] = [];
  private z: OwnedDeflate | null = null;
  private running = false;
  private release: (() => void) | null = null;
  private dead = false;
  private op = 0;
  private out: Buffer[] = [];
  private outLength = 0;
  /** The message being sent is compressed (decided on its first piece). */
  private compressing = false;
  /** A message has been begun and not yet ended (its `compressing` decision must survive). */
  private messageOpen = false;

  constructor(private readonly options: DeflateOptions, private readonly writer: FrameWriter, private readonly sink: DeflateSink) {}

  /** No message open, nothing queued or being compressed, no compressor held. */
  get resting(): boolean {
    return !this.messageOpen && this.items.length === 0 && !this.running && this.z === null;
  }

  /** Nothing queued: a frame written now keeps its order. */
  get idle(): boolean {
    return this.items.length === 0 && !this.running;
  }

  /**
   * One message or piece, compressed when the agreement and the threshold say
   * so. A streamed message (first piece not final) is compressed whatever its
   * first piece's size: its total is not known.
   */
  send(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void {
    if (first) this.compressing = this.options.compressOutgoing && (!fin || data.length >= this.options.threshold);
    this.messageOpen = !fin;
    const opcode = first ? (isBinary ? OP_BINARY : OP_TEXT) : OP_CONT;
    if (!this.compressing) return this.plain(opcode, data, fin);
    this.enqueue({ data, opcode: first ? opcode | RSV1 : opcode, fin, compress: true });
  }

  /**
   * A piece as it was received (a relay passing frames on): compressed
   * payload keeps RSV1 on its first frame, plain stays plain. Never compressed here.
   */
  sendAsIs(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, compressed: boolean): void {
    this.messageOpen = !fin;
    const opcode = first ? (isBinary ? OP_BINARY : OP_TEXT) | (compressed ? RSV1 : 0) : OP_CONT;
    this.plain(opcode, data, fin);
  }

  /** Run `fn` once everything queued before it has been written (a Close keeps its place after the messages). */
  then(fn: () => void): void {
    if (this.idle) fn();
    else this.items.push({ data: EMPTY, opcode: 0, fin: true, compress: false, then: fn });
  }

  /** Forget what is queued (the connection is being failed: nothing more is owed to the peer). */
  drop(): void {
    this.items.length = this.running ? 1 : 0;
    this.queuedBytes = this.running ? this.items[0].data.length : 0;
  }

  private plain(opcode: number, data: Buffer, fin: boolean): void {
    if (this.idle) this.writer.writeFrame(opcode, data, fin);
    else this.enqueue({ data, opcode, fin, compress: false });
  }

  private enqueue(item: OutItem): void {
    this.items.push(item);
    this.queuedBytes += item.data.length;
    this.pump();
  }

  /** Write what needs no compressing from the head of the queue; start zlib on the first that does. */
  private pump(): void {
    while (!this.running && !this.dead && this.items.length > 0) {
      const item = this.items[0];
      if (item.compress) {
        this.running = true;
        zlibQueue.add(this);
        return;
      }
      this.items.shift();
      if (item.then !== undefined) {
        item.then();
        continue;
      }
      this.queuedBytes -= item.data.length;
      this.writer.writeFrame(item.opcode, item.data, item.fin);
    }
  }

  cancelled(): boolean {
    return this.dead;
  }

  run(done: () => void): void {
    this.release = done;
    let z = this.z;
    if (z === null) {
      const o = this.options;
      // Our context takeover (only when agreed and configured): this connection's own compressor, kept.
      z = (o.keepDeflater ? newDeflater(o.deflateWindowBits, o.memLevel, o.level) : takeDeflater(o.deflateWindowBits, o.memLevel, o.level)) as OwnedDeflate;
      if (z[kOwner] === undefined) {
        z.on('data', onDeflateData);
        z.on('error', onDeflateError);
      }
      z[kOwner] = this;
      this.z = z;
    }
    const op = ++this.op;
    // Z_SYNC_FLUSH on every write (the context's flush mode): the write's output is complete when it calls back.
    z.write(this.items[0].data, (err?: Error | null) => this.compressed(op, err));
  }

  /** @internal zlib listener */
  onChunk(z: OwnedDeflate, chunk: Buffer): void {
    if (z !== this.z) return;
    this.out.push(chunk);
    this.outLength += chunk.length;
  }

  /** @internal zlib listener */
  onZlibError(z: OwnedDeflate, err: Error): void {
    if (z !== this.z) return;
    this.z = null;
    this.fail(err);
  }

  private compressed(op: number, err?: Error | null): void {
    if (op !== this.op || this.dead) return;
    if (err) return this.fail(err);
    const item = this.items.shift() as OutItem;
    this.queuedBytes -= item.data.length;
    let payload = this.out.length === 1 ? this.out[0] : Buffer.concat(this.out, this.outLength);
    this.out = [];
    this.outLength = 0;
    if (item.fin) {
      const stripped = withoutTrailer(payload);
      if (stripped === null) return this.fail(new Error('deflate output without the sync-flush tail'));
      payload = stripped;
    }
    zlibStats.deflatedIn += item.data.length;
    zlibStats.deflatedOut += payload.length;
    if (!this.options.keepDeflater) {
      // No takeover on our side: each piece is its own deflate stream, the context serves anyone next.
      const z = this.z as OwnedDeflate;
      z[kOwner] = null;
      this.z = null;
      giveDeflater(z, this.options.deflateWindowBits, this.options.memLevel, this.options.level);
    }
    this.running = false;
    const release = this.release;
    this.release = null;
    release?.();
    this.writer.writeFrame(item.opcode, payload, item.fin);
    this.pump();
    this.sink.onDeflated();
  }

  private fail(err: Error): void {
    this.destroy();
    this.sink.onDeflateError(err);
  }

  /** The connection is gone: queued work is dropped, the compressor closed or returned. */
  destroy(): void {
    this.dead = true;
    this.items.length = 0;
    this.queuedBytes = 0;
    const z = this.z;
    this.z = null;
    if (z !== null) {
      z[kOwner] = null;
      // Mid-write the context is not clean: close it rather than hand it on.
      if (this.running || this.options.keepDeflater) z.close();
      else giveDeflater(z, this.options.deflateWindowBits, this.options.memLevel, this.options.level);
    }
    this.running = false;
    const release = this.release;
    this.release = null;
    release?.();
  }
}

/**
 * §7.2.1: remove the 0x00 0x00 0xff 0xff a sync flush ends with. A last piece
 * that added nothing (zlib writes no second empty block) becomes the start of
 * an empty stored block instead, which the receiver's appended tail completes.
 */
function withoutTrailer(payload: Buffer): Buffer | null {
  const n = payload.length;
  if (n === 0) return EMPTY_STORED_BLOCK;
  if (n >= 4 && payload[n - 4] === 0x00 && payload[n - 3] === 0x00 && payload[n - 2] === 0xff && payload[n - 1] === 0xff) {
    return payload.subarray(0, n - 4);
  }
  return null;
}

/**
 * The peer ended its deflate stream (a block with BFINAL set, §7.2.3.4):
 * zlib ends the stream and the context takes no more input. Read from the
 * stream's state because the 'end' event comes a tick later, after the
 * context would already be back in the free list.
 */
function streamEnded(z: zlib.InflateRaw): boolean {
  return (z as unknown as { _readableState: { ended: boolean } })._readableState.ended;
}

/** The compression state of one connection: its options, and the two halves made on first use. */
export class PerMessageDeflate {
  inflater: MessageInflater | null = null;
  deflater: MessageDeflater | null = null;
  /** A relay passes the compressed pieces on (see MessageInflater.passCompressed). */
  passCompressed = false;
  constructor(readonly options: DeflateOptions) {}

  get queuedBytes(): number {
    return this.deflater?.queuedBytes ?? 0;
  }

  destroy(): void {
    this.inflater?.destroy();
    this.deflater?.destroy();
    this.inflater = null;
    this.deflater = null;
  }
}
