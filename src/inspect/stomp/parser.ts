/**
 * Streaming STOMP frame parser: bytes in, in any split (one byte per
 * WebSocket message, or many frames per message), whole frames out.
 *
 *   frame = command EOL *(header EOL) EOL *OCTET NUL *(EOL)
 *   EOL   = [CR] LF
 *
 * - EOLs between frames (heart-beats, and the EOLs a broker puts after a
 *   frame's NUL) are skipped; a push that brings only EOLs is reported as a
 *   heart-beat so the inspector can forward it.
 * - A body with `content-length` is exactly that many octets (NULs allowed)
 *   followed by NUL; without it the body ends at the first NUL.
 * - CR LF ends a line in every version, as brokers read it; any other CR in
 *   the command or header lines, and any NUL there, is refused: the gateway
 *   must read every frame exactly as the broker will.
 * - Header values are unescaped per version (escape.ts); repeated headers are
 *   kept in order (the first one wins when read); a repeated or non-decimal
 *   `content-length` is refused, since it decides where the frame ends.
 *
 * Limits (bad input costs a bounded amount of memory, whatever its shape):
 * the frame (command to NUL) at most `maxFrame` bytes, each command or header
 * line at most `maxHeaderLine` bytes, at most `maxHeaders` headers, the body
 * at most `maxBody` bytes. Between pushes the parser keeps only the part of
 * the one frame not yet complete, so it never holds more than `maxFrame + 1`
 * bytes. A frame that arrives whole in one push is handed over as a view of
 * that push's buffer (no copy).
 *
 * After an error, or after `stop`, the parser ignores further input.
 */
import { isUtf8 } from 'node:buffer';
import { StompError, StompFrame, escapesHeaders, type StompVersion } from './frame.js';
import { unescapeHeaderText } from './escape.js';

export interface StompLimits {
  maxFrame: number;
  maxHeaderLine: number;
  maxHeaders: number;
  maxBody: number;
}

export interface StompFrameSink {
  onFrame(frame: StompFrame): void;
  /** A push brought EOLs only, outside any frame. */
  onHeartbeat(): void;
}

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const COLON = 0x3a;
const BACKSLASH = 0x5c;

const enum Phase { Between, Command, Headers, Body }

/** The headers of a frame that has none, or whose headers are not decoded: shared, never written to. */
const NO_HEADERS: string[] = Object.freeze([]) as unknown as string[];

export class StompParser {
  /** Header decoding follows this version; set it once CONNECTED says which was agreed. */
  version: StompVersion;
  private phase = Phase.Between;
  /** Bytes of the frame in progress (offsets below are into it), or null when none is kept. */
  private acc: Buffer | null = null;
  private accLen = 0;
  /** Where scanning resumes: the start of the current line, or how far the NUL search got. */
  private scan = 0;
  private lineStart = 0;
  private bodyStart = 0;
  private contentLength = -1;
  private command = '';
  private headers: string[] = NO_HEADERS;
  private headerCount = 0;
  private binary = false;
  /** A CR was the last byte between frames: the next must be LF. */
  private pendingCr = false;
  private done: StompError | null = null;

  constructor(
    private readonly sink: StompFrameSink,
    private readonly commands: ReadonlySet<string>,
    private readonly limits: StompLimits,
    version: StompVersion,
    /**
     * Commands whose headers the sink reads; others' are checked (escapes,
     * UTF-8, content-length) but not decoded into strings, and their frames
     * come with no headers. Default: all.
     */
    private readonly decoded?: ReadonlySet<string>,
  ) {
    this.version = version;
  }

  /** Memory held for the frame in progress, in bytes (the accumulator's size, not only what is filled). */
  get buffered(): number {
    return this.acc === null ? 0 : this.acc.length;
  }

  /** Drop whatever is held and ignore all further input (the connection is ending). */
  stop(): void {
    this.done ??= new StompError('malformed', 'stomp_stopped', 'parser stopped');
    this.release();
  }

  /** Parse `chunk`; returns the error that ended parsing, if any (also on every later push). */
  push(chunk: Buffer, isBinary: boolean): StompError | null {
    if (this.done) return this.done;
    let eols = false;
    let frameBytes = false;
    // Buffers still to parse, in order: a frame that completes inside the
    // accumulator leaves its tail there, which goes before the rest of `chunk`.
    const queue: Buffer[] = [chunk];
    while (queue.length > 0 && this.done === null) {
      let buf = queue.shift()!;
      if (buf.length === 0) continue;
      if (this.acc === null) {
        const start = this.skipEols(buf);
        if (start !== 0) eols = true;
        if (start < 0 || start === buf.length) continue;
        if (start > 0) buf = buf.subarray(start);
        this.startFrame();
      } else {
        // Never keep more than one byte past the frame limit: a frame not done by then is refused anyway.
        const room = this.limits.maxFrame + 1 - this.accLen;
        if (buf.length > room) {
          queue.unshift(buf.subarray(room));
          buf = buf.subarray(0, room);
        }
        this.append(buf);
        buf = this.acc;
      }
      frameBytes = true;
      if (isBinary) this.binary = true;
      const end = buf === this.acc ? this.accLen : buf.length;
      const consumed = this.parseFrame(buf, end, this.scan);
      if (consumed < 0) {
        if (this.done === null) this.keep(buf, end);
        continue;
      }
      this.acc = null;
      this.accLen = 0;
      if (consumed < end) queue.unshift(buf.subarray(consumed, end));
    }
    if (eols && !frameBytes && this.done === null) this.sink.onHeartbeat();
    return this.done;
  }

  /** Skips EOLs; returns where the next frame starts (buf.length: none), or -1 on a stray CR. */
  private skipEols(buf: Buffer): number {
    let pos = 0;
    if (this.pendingCr) {
      if (buf[pos] !== LF) return this.fail('malformed', 'stomp_syntax', 'CR without LF between frames');
      this.pendingCr = false;
      pos++;
    }
    while (pos < buf.length) {
      const b = buf[pos];
      if (b === LF) pos++;
      else if (b === CR) {
        if (pos + 1 === buf.length) { this.pendingCr = true; return buf.length; }
        if (buf[pos + 1] !== LF) return this.fail('malformed', 'stomp_syntax', 'CR without LF between frames');
        pos += 2;
      } else break;
    }
    return pos;
  }

  private startFrame(): void {
    this.phase = Phase.Command;
    this.scan = 0;
    this.lineStart = 0;
    this.contentLength = -1;
    this.headerCount = 0;
    this.headers = NO_HEADERS;
    this.binary = false;
  }

  /**
   * Parses the frame that starts at offset 0 of `buf` (scanning from `from`,
   * up to `end`). Returns the offset just past its NUL when it is complete,
   * -1 when more input is needed or on error (`done` set).
   */
  private parseFrame(buf: Buffer, end: number, from: number): number {
    let pos = from;
    while (this.phase !== Phase.Body) {
      const lf = indexWithin(buf, LF, pos, end);
      if (lf === -1) {
        this.scan = end;
        if (end - this.lineStart > this.limits.maxHeaderLine) return this.fail('too_large', 'stomp_header_too_long', `a header line is longer than ${this.limits.maxHeaderLine} bytes`);
        this.checkFrameSize(end);
        return -1;
      }
      if (lf - this.lineStart > this.limits.maxHeaderLine) return this.fail('too_large', 'stomp_header_too_long', `a header line is longer than ${this.limits.maxHeaderLine} bytes`);
      if (!this.line(buf, this.lineStart, lf)) return -1;
      pos = lf + 1;
      this.lineStart = pos;
      this.scan = pos;
      if (!this.checkFrameSize(pos)) return -1;
    }
    return this.body(buf, end);
  }

  /** One command or header line [start, lf); false on error. */
  private line(buf: Buffer, start: number, lf: number): boolean {
    let stop = lf;
    if (stop > start && buf[stop - 1] === CR) stop--;
    let colon = -1;
    let escaped = false;
    let ascii = true;
    for (let i = start; i < stop; i++) {
      const b = buf[i];
      if (b === CR || b === NUL) return this.refuse('malformed', 'stomp_syntax', b === CR ? 'CR inside a header line' : 'NUL inside the headers');
      if (b === COLON && colon === -1) colon = i;
      else if (b === BACKSLASH) escaped = true;
      else if (b >= 0x80) ascii = false;
    }
    // ASCII is UTF-8; other bytes are checked unless a text message brought them (the transport checked those).
    if (!ascii && this.binary && !isUtf8(buf.subarray(start, stop))) return this.refuse('malformed', 'stomp_bad_utf8', 'header text is not UTF-8');
    if (this.phase === Phase.Command) return this.commandLine(buf, start, stop);
    if (stop === start) {
      this.phase = Phase.Body;
      this.bodyStart = lf + 1;
      this.scan = this.bodyStart;
      return true;
    }
    return this.headerLine(buf, start, stop, colon, escaped, ascii);
  }

  private commandLine(buf: Buffer, start: number, stop: number): boolean {
    const command = buf.toString('latin1', start, stop);
    if (!this.commands.has(command)) {
      return this.refuse('malformed', 'stomp_unknown_command', `unknown or unexpected command ${JSON.stringify(command.slice(0, 32))}`);
    }
    this.command = command;
    this.phase = Phase.Headers;
    return true;
  }

  private headerLine(buf: Buffer, start: number, stop: number, colon: number, escaped: boolean, ascii: boolean): boolean {
    if (colon <= start) return this.refuse('malformed', 'stomp_syntax', colon === -1 ? 'a header line without ":"' : 'a header with an empty name');
    if (++this.headerCount > this.limits.maxHeaders) return this.refuse('too_large', 'stomp_too_many_headers', `more than ${this.limits.maxHeaders} headers`);
    if (this.decoded !== undefined && !this.decoded.has(this.command)) return this.checkHeaderLine(buf, start, stop, colon, escaped);
    // latin1 decodes ASCII as UTF-8 would, faster.
    const encoding = ascii ? 'latin1' : 'utf8';
    let name = buf.toString(encoding, start, colon);
    let value = buf.toString(encoding, colon + 1, stop);
    if (escaped && escapesHeaders(this.command, this.version)) {
      const n = unescapeHeaderText(name, this.version);
      const v = unescapeHeaderText(value, this.version);
      if (n === undefined || v === undefined) return this.refuse('malformed', 'stomp_bad_escape', 'an undefined escape sequence in a header');
      name = n;
      value = v;
    }
    if (name === 'content-length' && !this.contentLengthIs(value)) return false;
    if (this.headers === NO_HEADERS) this.headers = [];
    this.headers.push(name, value);
    return true;
  }

  /** A header line of a frame whose headers are not decoded: escapes and content-length checked all the same. */
  private checkHeaderLine(buf: Buffer, start: number, stop: number, colon: number, escaped: boolean): boolean {
    if (escaped && escapesHeaders(this.command, this.version)) {
      for (let i = start; i < stop; i++) {
        if (buf[i] !== BACKSLASH) continue;
        const next = buf[++i];
        // \n \c \\, and \r in 1.2 (escape.ts); anything else, or nothing, is undefined.
        if (next !== 0x6e && next !== 0x63 && next !== BACKSLASH && !(next === 0x72 && this.version === '1.2')) {
          return this.refuse('malformed', 'stomp_bad_escape', 'an undefined escape sequence in a header');
        }
      }
    }
    // No escape can produce a name equal to content-length: compare the bytes as they are.
    if (colon - start === 14 && buf.toString('latin1', start, colon) === 'content-length') {
      return this.contentLengthIs(buf.toString('latin1', colon + 1, stop));
    }
    return true;
  }

  /** Takes the frame's content-length; false (and failed) when repeated, not decimal, or over the body limit. */
  private contentLengthIs(value: string): boolean {
    if (this.contentLength !== -1) return this.refuse('malformed', 'stomp_bad_content_length', 'content-length repeated');
    if (!/^[0-9]{1,15}$/.test(value)) return this.refuse('malformed', 'stomp_bad_content_length', 'content-length is not a decimal number');
    this.contentLength = Number(value);
    if (this.contentLength > this.limits.maxBody) return this.refuse('too_large', 'stomp_body_too_large', `the body is larger than ${this.limits.maxBody} bytes`);
    return true;
  }

  /** The body phase: returns the offset past the NUL when complete, else -1. */
  private body(buf: Buffer, end: number): number {
    let nul: number;
    if (this.contentLength >= 0) {
      nul = this.bodyStart + this.contentLength;
      if (!this.checkFrameSize(nul + 1)) return -1;
      if (nul >= end) {
        this.scan = end;
        return -1;
      }
      if (buf[nul] !== NUL) return this.fail('malformed', 'stomp_syntax', 'no NUL after content-length octets');
    } else {
      nul = indexWithin(buf, NUL, this.scan, end);
      if (nul === -1) {
        this.scan = end;
        if (end - this.bodyStart > this.limits.maxBody) return this.fail('too_large', 'stomp_body_too_large', `the body is larger than ${this.limits.maxBody} bytes`);
        this.checkFrameSize(end);
        return -1;
      }
      if (nul - this.bodyStart > this.limits.maxBody) return this.fail('too_large', 'stomp_body_too_large', `the body is larger than ${this.limits.maxBody} bytes`);
      if (!this.checkFrameSize(nul + 1)) return -1;
    }
    const frame = new StompFrame(this.command, this.headers, buf.subarray(0, nul + 1), this.bodyStart, this.binary);
    this.phase = Phase.Between;
    this.headers = NO_HEADERS;
    this.sink.onFrame(frame);
    return nul + 1;
  }

  /** false (and failed) when the frame so far, `length` bytes, passes the frame limit. */
  private checkFrameSize(length: number): boolean {
    if (length <= this.limits.maxFrame) return true;
    this.fail('too_large', 'stomp_frame_too_large', `the frame is larger than ${this.limits.maxFrame} bytes`);
    return false;
  }

  /** Keeps bytes [0, end) of `buf` (the frame in progress) for the next push. */
  private keep(buf: Buffer, end: number): void {
    if (buf === this.acc) return;
    const acc = Buffer.allocUnsafe(Math.min(Math.max(end * 2, 256), this.limits.maxFrame + 1));
    buf.copy(acc, 0, 0, end);
    this.acc = acc;
    this.accLen = end;
  }

  private append(part: Buffer): void {
    const acc = this.acc!;
    const need = this.accLen + part.length;
    if (need > acc.length) {
      const grown = Buffer.allocUnsafe(Math.min(Math.max(need, acc.length * 2), this.limits.maxFrame + 1));
      acc.copy(grown, 0, 0, this.accLen);
      this.acc = grown;
    }
    part.copy(this.acc!, this.accLen);
    this.accLen = need;
  }

  private release(): void {
    this.acc = null;
    this.accLen = 0;
    this.headers = NO_HEADERS;
  }

  /** `fail` for the line parsers, which answer "go on?". */
  private refuse(kind: StompError['kind'], reason: string, message: string): false {
    this.fail(kind, reason, message);
    return false;
  }

  private fail(kind: StompError['kind'], reason: string, message: string): -1 {
    this.done = new StompError(kind, reason, message);
    this.release();
    return -1;
  }
}

/** indexOf limited to [from, end): `buf` may be an accumulator with spare capacity. */
function indexWithin(buf: Buffer, byte: number, from: number, end: number): number {
  if (from >= end) return -1;
  const i = end === buf.length ? buf.indexOf(byte, from) : buf.subarray(0, end).indexOf(byte, from);
  return i;
}
