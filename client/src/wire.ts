/**
 * The fallback wire format (see docs/fallback.md): frames of
 * `type (1 byte) · length (4 bytes, big-endian) · payload`. Browser-safe
 * (Uint8Array / DataView only); the gateway's src/fallback/wire.ts is the
 * server side of the same format.
 */
export const TEXT = 0x01;
export const BINARY = 0x02;
export const CLOSE = 0x03;
export const HEARTBEAT = 0x04;
export const SEQ = 0x05;
export const ACK = 0x06;
export const END = 0x07;
export const PING = 0x08;
export const PONG = 0x09;
/** The session key from the open answer: the first frame of every session request's body. */
export const KEY = 0x0a;

export const HEADER = 5;

export interface WireFrame { type: number; payload: Uint8Array }

/** Writes a frame header (type, big-endian length) at `off`. */
export function writeHeader(out: Uint8Array, off: number, type: number, length: number): void {
  out[off] = type;
  out[off + 1] = length >>> 24;
  out[off + 2] = (length >>> 16) & 0xff;
  out[off + 3] = (length >>> 8) & 0xff;
  out[off + 4] = length & 0xff;
}

export function frame(type: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEADER + payload.length);
  writeHeader(out, 0, type, payload.length);
  out.set(payload, HEADER);
  return out;
}

export function numberFrame(type: number, value: number): Uint8Array {
  const payload = new Uint8Array(6);
  const view = new DataView(payload.buffer);
  view.setUint16(0, Math.floor(value / 2 ** 32));
  view.setUint32(2, value >>> 0);
  return frame(type, payload);
}

export function readNumber(payload: Uint8Array): number {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return view.getUint16(0) * 2 ** 32 + view.getUint32(2);
}

export function closeFrame(code: number, reason: string): Uint8Array {
  const r = new TextEncoder().encode(reason);
  const payload = new Uint8Array(2 + r.length);
  new DataView(payload.buffer).setUint16(0, code);
  payload.set(r, 2);
  return frame(CLOSE, payload);
}

export function readClose(payload: Uint8Array): { code: number; reason: string } {
  if (payload.length < 2) return { code: 1005, reason: '' };
  const code = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint16(0);
  return { code, reason: new TextDecoder().decode(payload.subarray(2)) };
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

const EMPTY = new Uint8Array(0);

/** Incremental parser for a downstream body that arrives in arbitrary chunks. */
export class FrameReader {
  private buf: Uint8Array = EMPTY;

  /** Feed a chunk; returns the frames it completes. Throws on a frame longer than `maxPayload`. */
  push(chunk: Uint8Array, maxPayload: number): WireFrame[] {
    this.buf = this.buf.length === 0 ? chunk : concat([this.buf, chunk]);
    const frames: WireFrame[] = [];
    let off = 0;
    const buf = this.buf;
    while (buf.length - off >= HEADER) {
      const len = (buf[off + 1] * 0x1000000) + (buf[off + 2] << 16 | buf[off + 3] << 8 | buf[off + 4]);
      if (len > maxPayload) throw new Error(`frame of ${len} bytes exceeds ${maxPayload}`);
      if (buf.length - off - HEADER < len) break;
      frames.push({ type: buf[off], payload: buf.subarray(off + HEADER, off + HEADER + len) });
      off += HEADER + len;
    }
    this.buf = off === buf.length ? EMPTY : buf.slice(off);
    return frames;
  }

  get pending(): number { return this.buf.length; }
}

/** Bytes of a base64url string (the session key), in browsers and Node alike. */
export function fromBase64Url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
