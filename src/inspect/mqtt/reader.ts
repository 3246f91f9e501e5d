/**
 * A cursor over one packet's bytes: the MQTT data types (MQTT 5.0 §1.5),
 * each read checked against the end of the packet. Strings must be well-formed
 * UTF-8 without U+0000 [MQTT-1.5.4-1, -2]; anything else is malformed.
 */
import { isUtf8 } from 'node:buffer';
import { malformed } from './errors.js';

export class PacketReader {
  constructor(readonly buf: Buffer, public pos: number, public end: number) {}

  get left(): number {
    return this.end - this.pos;
  }

  u8(): number {
    if (this.pos >= this.end) throw malformed('packet ends inside a field');
    return this.buf[this.pos++];
  }

  u16(): number {
    if (this.pos + 2 > this.end) throw malformed('packet ends inside a field');
    const v = (this.buf[this.pos] << 8) | this.buf[this.pos + 1];
    this.pos += 2;
    return v;
  }

  u32(): number {
    if (this.pos + 4 > this.end) throw malformed('packet ends inside a field');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** Variable Byte Integer: at most four bytes, minimally encoded. */
  varint(): number {
    let value = 0;
    let multiplier = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8();
      value += (b & 0x7f) * multiplier;
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw malformed('Variable Byte Integer not minimally encoded');
        return value;
      }
      multiplier *= 128;
    }
    throw malformed('Variable Byte Integer longer than four bytes');
  }

  /** Two-byte length, then that many bytes (a slice, not a copy). */
  binary(): Buffer {
    const n = this.u16();
    if (this.pos + n > this.end) throw malformed('packet ends inside a field');
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** A UTF-8 string field, checked. */
  string(): string {
    return checkedUtf8(this.binary());
  }
}

/** Decode a UTF-8 string field, refusing ill-formed UTF-8 and U+0000. */
export function checkedUtf8(bytes: Buffer): string {
  if (bytes.indexOf(0) >= 0) throw malformed('U+0000 in a string');
  if (!isUtf8(bytes)) throw malformed('ill-formed UTF-8 in a string');
  return bytes.toString('utf8');
}

/** Bytes of a Variable Byte Integer encoding `n`. */
export function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Write `n` as a Variable Byte Integer at `pos`; returns the position after it. */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    buf[pos++] = b;
  } while (n > 0);
  return pos;
}
