/**
 * Streaming RFC 6455 frame parser (§5).
 *
 * Memory: the parser holds at most one frame header (≤ 14 bytes) and, when a
 * control frame is split across reads, its payload (≤ 125 bytes). Data payload
 * is never buffered: each piece is unmasked in place inside the incoming chunk
 * and handed on as a `subarray` (zero copy) as soon as it is validated.
 *
 * Every limit is decided from the frame header, before any payload is read or
 * allocated. Feeding the same bytes in any chops (down to one byte per `push`)
 * produces exactly the same callbacks, except that data may be split into more
 * pieces.
 *
 * Decisions documented here:
 * - Non-minimal length encodings (126 carrying 5, 127 carrying 200) are
 *   ACCEPTED, always. RFC 6455 §5.2 puts the "minimal number of bytes"
 *   requirement on the sender; a receiver that reads the declared length frames
 *   the stream correctly either way, and accepting is what ws and browsers do.
 * - After a Close frame the parser ignores all further input (§5.5.1: the
 *   Close is the last frame an endpoint sends).
 * - A fragment counts toward `maxFragments` whether or not it is empty.
 * - Buffers passed to the handler are views into the input chunk (or, for a
 *   control frame split across reads, into the parser's scratch): copy them if
 *   you keep them beyond the call.
 * - With `maskedBinary` set, binary payload is delivered still masked (see
 *   there): a relay re-masks it for the next hop in one pass instead of two.
 *   Every check is made as before; binary payload has no content to check.
 */
import {
  OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, MAX_CONTROL_PAYLOAD, isValidCloseCode,
  CLOSE_PROTOCOL_ERROR, CLOSE_INVALID_PAYLOAD, CLOSE_TOO_BIG, CLOSE_NO_STATUS,
} from './constants.js';
import { xorKey, xorRange } from './mask.js';
import { Utf8Validator, isValidUtf8 } from './utf8.js';

export interface FrameParserOptions {
  /** Server role: true (client frames must be masked, else 1002). Client role: false (masked server frame → 1002). */
  expectMasked: boolean;
  /** Payload length of one data frame; over → 1009, decided from the header. */
  maxFrame: number;
  /** Summed length of a message's frames; over → 1009, decided from the header. */
  maxMessage: number;
  /** Frames per message, empty ones included; over → 1009. */
  maxFragments: number;
  /**
   * permessage-deflate was negotiated: RSV1 is allowed on the first frame of
   * a data message and marks it compressed (RFC 7692 §6). Such a message is
   * delivered as it arrives, still compressed (`messageCompressed` is true
   * during `onData`): its text is UTF-8 checked after inflation, by the
   * connection (deflate-codec.ts), not here.
   */
  allowRsv1?: boolean;
}

export interface FrameParserHandler {
  /**
   * A piece of a text/binary message, delivered as it arrives. `first`: first
   * piece of the message; `fin`: last piece. Text is UTF-8 validated before a
   * piece is delivered. `totalLength`: the message length when known up front
   * (first piece of an unfragmented frame), else undefined.
   */
  onData(data: Buffer, isBinary: boolean, first: boolean, fin: boolean, totalLength?: number): void;
  onPing(payload: Buffer): void;
  onPong(payload: Buffer): void;
  /** `code` is 1005 when the Close had no payload. The payload is already validated. */
  onClose(code: number, reason: string): void;
  /** Called once; the parser then ignores all further input. */
  onError(closeCode: number, reason: string): void;
}

const EMPTY = Buffer.alloc(0);

/**
 * The key of the binary piece being delivered in `maskedBinary` mode, rotated
 * so that byte 0 of the piece uses key[0]. One for all parsers: it is only
 * read during the `onData` call that delivers the piece.
 */
const PIECE_KEY = Buffer.alloc(4);

// Parser states.
const S_HEADER = 0;
const S_DATA = 1; // inside the payload of a text/binary/continuation frame
const S_CONTROL = 2; // collecting the payload of a control frame
const S_DONE = 3; // failed or closed: input ignored

// Scratch layout: header bytes at [0, 14), control payload at [CTRL_AT, CTRL_AT + 125).
const CTRL_AT = 16;
const SCRATCH_SIZE = CTRL_AT + MAX_CONTROL_PAYLOAD;

/** Header size implied by the second header byte (mask bit and 7-bit length). */
function headerSize(b1: number): number {
  const len7 = b1 & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((b1 & 0x80) !== 0 ? 4 : 0);
}

export class FrameParser {
  /**
   * Kept by reference, not copied into five fields: they are read once per
   * frame header, and one object shared by every parser with the same settings
   * costs an idle connection nothing (memory per idle connection counts).
   */
  private readonly limits: FrameParserOptions;
  private readonly handler: FrameParserHandler;

  private state = S_HEADER;
  /** Allocated on first need only (a header or control payload split across reads). */
  private scratch: Buffer | null = null;
  /** Header bytes collected in scratch. */
  private headerHave = 0;
  /** Control payload bytes collected in scratch. */
  private ctrlHave = 0;

  // The current frame.
  private fin = false;
  private opcode = 0;
  private masked = false;
  /**
   * The masking key's four bytes in one int32 (first byte highest), unpacked
   * per payload piece: one field instead of four in every connection's parser.
   */
  private maskKey = 0;
  private frameLength = 0;
  /** Payload bytes still to come. */
  private remaining = 0;
  /** Payload bytes already consumed (mask key rotation). */
  private consumed = 0;

  // The current message.
  /** A fragmented message is open and continuation frames are expected. */
  private expectCont = false;
  private msgBinary = false;
  private msgLength = 0;
  private msgFragments = 0;
  private msgDelivered = false;
  /** RFC 7692 §6: the message's first frame had RSV1 (its payload is compressed). */
  private msgCompressed = false;
  private utf8: Utf8Validator | null = null;

  private pausedFlag = false;
  private pending: Buffer[] | null = null;

  /**
   * Deliver the payload of masked binary frames without unmasking it; during
   * the `onData` call, `pieceMask` is the key the piece is masked with. Only
   * for a consumer that hands the bytes on to be re-masked (a passthrough
   * relay): text is still unmasked, because it is UTF-8 checked here.
   */
  maskedBinary = false;
  /** Frames whose header was read (a cheap activity counter for idle timers). */
  framesIn = 0;
  /** Data messages begun (lets a timer tell one open message from the next). */
  messagesBegun = 0;

  /** `opts` is kept by reference (share one object between parsers; do not change it). */
  constructor(opts: FrameParserOptions, handler: FrameParserHandler) {
    this.limits = opts;
    this.handler = handler;
  }

  /** True while a data message is incomplete (fragments pending or payload still arriving). */
  get messageOpen(): boolean {
    return this.expectCont || this.state === S_DATA;
  }

  /**
   * Inside `onData`: the key the delivered piece is still masked with (byte 0
   * uses key[0]; valid during that call only), or null when it is plain.
   */
  get pieceMask(): Buffer | null {
    return this.maskedBinary && this.masked && this.msgBinary && !this.msgCompressed ? PIECE_KEY : null;
  }

  /** Inside `onData`: the piece belongs to a compressed message (RFC 7692 §6) and is delivered compressed. */
  get messageCompressed(): boolean {
    return this.msgCompressed;
  }

  /** True once the parser failed or saw a Close: further input is ignored. */
  get done(): boolean {
    return this.state === S_DONE;
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  /**
   * Stop delivering. May be called from inside a callback: the rest of the
   * current chunk is kept (as a view, no copy) until `resume`. The owner should
   * also stop reading its socket, so only already-read chunks are held.
   */
  pause(): void {
    this.pausedFlag = true;
  }

  resume(): void {
    if (!this.pausedFlag) return;
    this.pausedFlag = false;
    while (this.pending !== null && !this.pausedFlag && this.state !== S_DONE) {
      const q = this.pending;
      const chunk = q.shift() as Buffer;
      if (q.length === 0) this.pending = null;
      const stop = this.consume(chunk, 0);
      if (stop >= 0) this.hold(chunk.subarray(stop), true);
    }
    if (this.state === S_DONE) this.pending = null;
  }

  push(chunk: Buffer): void {
    if (this.state === S_DONE) return;
    if (this.pausedFlag || this.pending !== null) {
      this.hold(chunk, false);
      return;
    }
    const stop = this.consume(chunk, 0);
    if (stop >= 0) this.hold(chunk.subarray(stop), true);
  }

  private hold(chunk: Buffer, front: boolean): void {
    if (chunk.length === 0) return;
    if (this.pending === null) this.pending = [chunk];
    else if (front) this.pending.unshift(chunk);
    else this.pending.push(chunk);
  }

  /**
   * Parse `buf` from `pos`. Returns -1 when all of it was consumed (or the
   * parser is done), else the position where it stopped because of `pause()`.
   */
  private consume(buf: Buffer, pos: number): number {
    const len = buf.length;
    while (pos < len) {
      if (this.pausedFlag) return pos;
      const state = this.state;
      if (state === S_DATA) {
        // Hand on as much payload as this chunk holds.
        const end = Math.min(len, pos + this.remaining);
        this.dataPiece(buf, pos, end);
        pos = end;
      } else if (state === S_HEADER) {
        if (this.headerHave === 0 && len - pos >= 2) {
          // Fast path: the whole header is inside this chunk; read it in place.
          const size = headerSize(buf[pos + 1]);
          if (len - pos >= size) {
            const at = pos;
            pos += size;
            this.readHeader(buf, at);
            continue;
          }
        }
        pos = this.collectHeader(buf, pos);
      } else if (state === S_CONTROL) {
        const need = this.remaining;
        if (this.ctrlHave === 0 && len - pos >= need) {
          // Whole control payload in this chunk: unmask in place, no copy.
          const at = pos;
          pos += need;
          this.controlFrame(buf, at, pos);
        } else {
          pos = this.collectControl(buf, pos);
        }
      } else {
        return -1;
      }
    }
    return -1;
  }

  /** Copy header bytes into scratch until the header is complete. */
  private collectHeader(buf: Buffer, pos: number): number {
    const s = (this.scratch ??= Buffer.allocUnsafe(SCRATCH_SIZE));
    const len = buf.length;
    let have = this.headerHave;
    while (have < 2 && pos < len) s[have++] = buf[pos++];
    if (have < 2) {
      this.headerHave = have;
      return pos;
    }
    const size = headerSize(s[1]);
    while (have < size && pos < len) s[have++] = buf[pos++];
    if (have < size) {
      this.headerHave = have;
      return pos;
    }
    this.headerHave = 0;
    this.readHeader(s, 0);
    return pos;
  }

  /** Copy a split control payload into scratch; handle it once complete. */
  private collectControl(buf: Buffer, pos: number): number {
    const s = (this.scratch ??= Buffer.allocUnsafe(SCRATCH_SIZE));
    const take = Math.min(this.remaining - this.ctrlHave, buf.length - pos);
    buf.copy(s, CTRL_AT + this.ctrlHave, pos, pos + take);
    this.ctrlHave += take;
    pos += take;
    if (this.ctrlHave === this.remaining) {
      this.ctrlHave = 0;
      this.controlFrame(s, CTRL_AT, CTRL_AT + this.remaining);
    }
    return pos;
  }

  /** Validate a complete header at buf[off]; sets up the frame or fails. */
  private readHeader(buf: Buffer, off: number): void {
    const b0 = buf[off];
    const b1 = buf[off + 1];
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    let length = b1 & 0x7f;
    let p = off + 2;
    this.framesIn++;

    // RFC 6455 §5.2: RSV1-3 MUST be 0 unless an extension defines them. The
    // only one we negotiate is permessage-deflate, which uses RSV1 on the
    // first frame of a data message only: on a control frame or a
    // continuation it fails the connection (RFC 7692 §6.1).
    if ((b0 & 0x70) !== 0) {
      if ((b0 & 0x30) !== 0 || this.limits.allowRsv1 !== true || (opcode !== OP_TEXT && opcode !== OP_BINARY)) {
        return this.fail(CLOSE_PROTOCOL_ERROR, 'reserved bits set');
      }
    }

    if (opcode >= 0x8) {
      // RFC 6455 §5.2: opcodes 0xB-0xF are reserved for further control frames.
      if (opcode > OP_PONG) return this.fail(CLOSE_PROTOCOL_ERROR, 'reserved opcode');
      // RFC 6455 §5.4: control frames MUST NOT be fragmented.
      if (!fin) return this.fail(CLOSE_PROTOCOL_ERROR, 'fragmented control frame');
      // RFC 6455 §5.5: control frame payload ≤ 125 bytes (so never 126/127 encodings).
      if (length > MAX_CONTROL_PAYLOAD) return this.fail(CLOSE_PROTOCOL_ERROR, 'control frame too long');
    } else if (opcode === OP_CONT) {
      // RFC 6455 §5.4: a continuation frame needs an open fragmented message.
      if (!this.expectCont) return this.fail(CLOSE_PROTOCOL_ERROR, 'unexpected continuation frame');
    } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
      // RFC 6455 §5.4: fragments of one message are not interleaved with another message.
      if (this.expectCont) return this.fail(CLOSE_PROTOCOL_ERROR, 'new message inside a fragmented message');
    } else {
      // RFC 6455 §5.2: opcodes 0x3-0x7 are reserved for further non-control frames.
      return this.fail(CLOSE_PROTOCOL_ERROR, 'reserved opcode');
    }

    // RFC 6455 §5.1: a server MUST close on an unmasked client frame; a client
    // MUST close on a masked server frame.
    if (masked !== this.limits.expectMasked) {
      return this.fail(CLOSE_PROTOCOL_ERROR, masked ? 'masked frame from server' : 'unmasked frame from client');
    }

    // RFC 6455 §5.2: 126 → 16-bit length, 127 → 64-bit length whose most
    // significant bit MUST be 0. Non-minimal encodings are accepted (see top).
    if (length === 126) {
      length = (buf[p] << 8) | buf[p + 1];
      p += 2;
    } else if (length === 127) {
      const hi = buf[p];
      if ((hi & 0x80) !== 0) return this.fail(CLOSE_PROTOCOL_ERROR, '64-bit length with the most significant bit set');
      // Exact up to 2^53; anything larger is far beyond any limit anyway.
      length =
        (hi * 0x1000000 + (buf[p + 1] << 16) + (buf[p + 2] << 8) + buf[p + 3]) * 0x100000000 +
        (buf[p + 4] * 0x1000000 + (buf[p + 5] << 16) + (buf[p + 6] << 8) + buf[p + 7]);
      p += 8;
    }

    if (masked) this.maskKey = (buf[p] << 24) | (buf[p + 1] << 16) | (buf[p + 2] << 8) | buf[p + 3];
    this.fin = fin;
    this.opcode = opcode;
    this.masked = masked;
    this.frameLength = length;
    this.remaining = length;
    this.consumed = 0;

    if (opcode >= 0x8) {
      if (length === 0) {
        this.state = S_HEADER;
        this.control(EMPTY);
      } else {
        this.state = S_CONTROL;
      }
      return;
    }

    // Limits (RFC 6455 §10.4), from the header, before reading any payload → 1009.
    const limits = this.limits;
    if (length > limits.maxFrame) return this.fail(CLOSE_TOO_BIG, 'frame too big');
    if (opcode === OP_CONT) {
      const total = this.msgLength + length;
      if (total > limits.maxMessage) return this.fail(CLOSE_TOO_BIG, 'message too big');
      // Every fragment counts, empty ones too: otherwise a peer can keep a
      // message open forever with zero-length continuations.
      if (this.msgFragments + 1 > limits.maxFragments) return this.fail(CLOSE_TOO_BIG, 'too many fragments');
      this.msgLength = total;
      this.msgFragments++;
    } else {
      if (length > limits.maxMessage) return this.fail(CLOSE_TOO_BIG, 'message too big');
      if (limits.maxFragments < 1) return this.fail(CLOSE_TOO_BIG, 'too many fragments');
      this.msgLength = length;
      this.msgFragments = 1;
      this.msgBinary = opcode === OP_BINARY;
      this.msgDelivered = false;
      this.msgCompressed = (b0 & 0x40) !== 0;
      this.messagesBegun++;
      if (!this.msgBinary && !this.msgCompressed) {
        if (this.utf8 === null) this.utf8 = new Utf8Validator();
        else this.utf8.reset();
      }
    }
    this.expectCont = !fin;

    if (length === 0) {
      // Nothing to read: an empty final frame still ends the message.
      this.state = S_HEADER;
      if (fin) this.dataPiece(EMPTY, 0, 0);
    } else {
      this.state = S_DATA;
    }
  }

  /** Unmask, validate and deliver payload bytes [start, end) of the current data frame. */
  private dataPiece(buf: Buffer, start: number, end: number): void {
    const n = end - start;
    if (this.masked && n > 0) {
      const r = this.consumed & 3;
      const m = this.maskKey;
      const k0 = m >>> 24, k1 = (m >>> 16) & 0xff, k2 = (m >>> 8) & 0xff, k3 = m & 0xff;
      if (this.maskedBinary && this.msgBinary && !this.msgCompressed) {
        // Left masked: the consumer re-masks it in one pass with this key.
        const key = PIECE_KEY;
        key[0] = r === 0 ? k0 : r === 1 ? k1 : r === 2 ? k2 : k3;
        key[1] = r === 0 ? k1 : r === 1 ? k2 : r === 2 ? k3 : k0;
        key[2] = r === 0 ? k2 : r === 1 ? k3 : r === 2 ? k0 : k1;
        key[3] = r === 0 ? k3 : r === 1 ? k0 : r === 2 ? k1 : k2;
      } else if (r === 0) xorRange(buf, start, end, k0, k1, k2, k3);
      else if (r === 1) xorRange(buf, start, end, k1, k2, k3, k0);
      else if (r === 2) xorRange(buf, start, end, k2, k3, k0, k1);
      else xorRange(buf, start, end, k3, k0, k1, k2);
    }
    this.consumed += n;
    this.remaining -= n;
    const frameDone = this.remaining === 0;
    const fin = frameDone && this.fin;
    if (frameDone) this.state = S_HEADER;
    // An empty piece that does not end the message carries nothing.
    if (n === 0 && !fin) return;

    const isBinary = this.msgBinary;
    if (!isBinary && !this.msgCompressed) {
      const v = this.utf8 as Utf8Validator;
      // RFC 6455 §8.1: invalid UTF-8 in a text message → fail (1007). Checked
      // per piece so that the first invalid fragment/chop fails at once.
      if (!v.update(buf, start, end)) return this.fail(CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in text message');
      // A code point left incomplete at the end of the message is invalid too.
      if (fin && !v.finish()) return this.fail(CLOSE_INVALID_PAYLOAD, 'truncated UTF-8 at end of text message');
    }
    const first = !this.msgDelivered;
    this.msgDelivered = true;
    const total = first && this.fin && this.opcode !== OP_CONT ? this.frameLength : undefined;
    this.handler.onData(n === buf.length ? buf : buf.subarray(start, end), isBinary, first, fin, total);
  }

  /** A complete control payload at buf[start, end) (still masked). */
  private controlFrame(buf: Buffer, start: number, end: number): void {
    if (this.masked) {
      const m = this.maskKey;
      xorKey(buf, start, end, m);
    }
    this.state = S_HEADER;
    this.control(buf.subarray(start, end));
  }

  private control(payload: Buffer): void {
    const opcode = this.opcode;
    if (opcode === OP_PING) {
      this.handler.onPing(payload);
    } else if (opcode === OP_PONG) {
      this.handler.onPong(payload);
    } else if (opcode === OP_CLOSE) {
      this.closeFrame(payload);
    }
  }

  private closeFrame(payload: Buffer): void {
    // RFC 6455 §5.5.1: an empty Close is allowed (reported as 1005, §7.1.5);
    // otherwise the first two bytes are the code, so length 1 is malformed.
    if (payload.length === 0) {
      this.state = S_DONE;
      this.handler.onClose(CLOSE_NO_STATUS, '');
      return;
    }
    if (payload.length === 1) return this.fail(CLOSE_PROTOCOL_ERROR, 'close frame with 1-byte payload');
    const code = (payload[0] << 8) | payload[1];
    // RFC 6455 §7.4.1-7.4.2: only defined/registered/private codes may be sent.
    if (!isValidCloseCode(code)) return this.fail(CLOSE_PROTOCOL_ERROR, 'invalid close code');
    const reasonBytes = payload.subarray(2);
    // RFC 6455 §5.5.1: the reason is UTF-8 (§8.1 applies) → 1007.
    if (reasonBytes.length > 0 && !isValidUtf8(reasonBytes)) {
      return this.fail(CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in close reason');
    }
    // RFC 6455 §5.5.1: nothing is expected after a Close; ignore the rest.
    this.state = S_DONE;
    this.pending = null;
    this.handler.onClose(code, reasonBytes.toString('utf8'));
  }

  private fail(code: number, reason: string): void {
    this.state = S_DONE;
    this.pending = null;
    this.expectCont = false;
    this.handler.onError(code, reason);
  }
}
