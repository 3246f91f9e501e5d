/**
 * The fallback wire format: a body (upstream POST or downstream response) is a
 * sequence of frames, each `type (1 byte) · length (4 bytes, big-endian) · payload`.
 * Length-prefixed, so text and binary are carried byte for byte and a parser
 * never scans payloads for delimiters (no escaping, linear time).
 *
 * Message-like frames (TEXT, BINARY, CLOSE) are numbered implicitly: a SEQ frame
 * gives the number of the next message-like frame in the body, each one after
 * it counts one up. ACK carries the highest number received from the peer.
 * Numbers are 48-bit unsigned (6 bytes), far beyond any session's lifetime.
 *
 * The client library (client/src/wire.ts) implements the same format for
 * browsers; docs/fallback.md is the specification both follow.
 */
import { isUtf8 } from 'node:buffer';

export const FrameType = {
  TEXT: 0x01,
  BINARY: 0x02,
  /** payload: close code (2 bytes, big-endian) · UTF-8 reason */
  CLOSE: 0x03,
  /** empty: keeps a quiet stream alive, proves the stream is not buffered */
  HEARTBEAT: 0x04,
  /** payload: 6-byte number of the next message-like frame in this body */
  SEQ: 0x05,
  /** payload: 6-byte number of the highest message-like frame received from the peer */
  ACK: 0x06,
  /** empty: the server ends this response on purpose; the client re-requests at once */
  END: 0x07,
  /** upstream, payload: a 6-byte token; the gateway answers PONG with it on the stream attached now */
  PING: 0x08,
  /** downstream, payload: the PING's token; not numbered (a probe of the path, not a message) */
  PONG: 0x09,
  /**
   * upstream, payload: the session key (32 bytes) from the open answer; the
   * first frame of every body of a session request, which it binds to the
   * session — the id in the URL alone is worth nothing
   */
  KEY: 0x0a,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

export const FRAME_HEADER_BYTES = 5;
export const SESSION_KEY_BYTES = 32;
/** A KEY frame: header and key. */
export const KEY_FRAME_BYTES = FRAME_HEADER_BYTES + SESSION_KEY_BYTES;
const NUMBER_BYTES = 6;
export const MAX_SEQ = 2 ** 48 - 1;

export type Frame =
  | { type: typeof FrameType.TEXT | typeof FrameType.BINARY; payload: Buffer }
  | { type: typeof FrameType.CLOSE; code: number; reason: string }
  | { type: typeof FrameType.HEARTBEAT | typeof FrameType.END }
  | { type: typeof FrameType.SEQ | typeof FrameType.ACK | typeof FrameType.PING; value: number };

export function encodeMessage(data: Buffer, isBinary: boolean): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + data.length);
  out[0] = isBinary ? FrameType.BINARY : FrameType.TEXT;
  out.writeUInt32BE(data.length, 1);
  data.copy(out, FRAME_HEADER_BYTES);
  return out;
}

export function encodeNumber(type: typeof FrameType.SEQ | typeof FrameType.ACK | typeof FrameType.PONG, value: number): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + NUMBER_BYTES);
  out[0] = type;
  out.writeUInt32BE(NUMBER_BYTES, 1);
  out.writeUIntBE(value, FRAME_HEADER_BYTES, NUMBER_BYTES);
  return out;
}

export function encodeEmpty(type: typeof FrameType.HEARTBEAT | typeof FrameType.END): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_BYTES);
  out[0] = type;
  return out;
}

export function encodeClose(code: number, reason: string): Buffer {
  const reasonBytes = Buffer.from(reason, 'utf8');
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 2 + reasonBytes.length);
  out[0] = FrameType.CLOSE;
  out.writeUInt32BE(2 + reasonBytes.length, 1);
  out.writeUInt16BE(code, FRAME_HEADER_BYTES);
  reasonBytes.copy(out, FRAME_HEADER_BYTES + 2);
  return out;
}

/** Why a body was refused; `closeCode` is what a WebSocket connection would close with for the same input. */
export class WireError extends Error {
  constructor(readonly reason: 'malformed_frame' | 'invalid_utf8' | 'message_too_big' | 'too_many_frames' | 'invalid_close',
    readonly closeCode: 1002 | 1007 | 1009, message: string) {
    super(message);
  }
}

export interface DecodeLimits {
  /** Largest TEXT / BINARY payload (the service's max_message). */
  maxMessage: number;
  /** Most frames in one body. */
  maxFrames: number;
}

/**
 * Decode a whole body. Returns the frames before the first error, and the
 * error, so that (like a WebSocket connection) what came before a bad frame is
 * still delivered. Payloads are views into `body`.
 */
export function decodeFrames(body: Buffer, limits: DecodeLimits): { frames: Frame[]; error?: WireError } {
  const frames: Frame[] = [];
  let off = 0;
  while (off < body.length) {
    if (frames.length >= limits.maxFrames) {
      return { frames, error: new WireError('too_many_frames', 1009, `more than ${limits.maxFrames} frames in one body`) };
    }
    if (body.length - off < FRAME_HEADER_BYTES) return { frames, error: new WireError('malformed_frame', 1002, 'truncated frame header') };
    const type = body[off];
    const len = body.readUInt32BE(off + 1);
    const start = off + FRAME_HEADER_BYTES;
    // Decide on size from the header, before looking at the payload.
    if ((type === FrameType.TEXT || type === FrameType.BINARY) && len > limits.maxMessage) {
      return { frames, error: new WireError('message_too_big', 1009, `message of ${len} bytes exceeds ${limits.maxMessage}`) };
    }
    if (len > body.length - start) return { frames, error: new WireError('malformed_frame', 1002, 'truncated frame payload') };
    const payload = body.subarray(start, start + len);
    off = start + len;
    switch (type) {
      case FrameType.TEXT:
        if (!isUtf8(payload)) return { frames, error: new WireError('invalid_utf8', 1007, 'text message is not valid UTF-8') };
        frames.push({ type, payload });
        break;
      case FrameType.BINARY:
        frames.push({ type, payload });
        break;
      case FrameType.CLOSE: {
        const close = decodeClosePayload(payload);
        if (close instanceof WireError) return { frames, error: close };
        frames.push({ type, ...close });
        break;
      }
      case FrameType.HEARTBEAT:
      case FrameType.END:
        if (len !== 0) return { frames, error: new WireError('malformed_frame', 1002, 'control frame with payload') };
        frames.push({ type });
        break;
      case FrameType.SEQ:
      case FrameType.ACK:
      case FrameType.PING:
        if (len !== NUMBER_BYTES) return { frames, error: new WireError('malformed_frame', 1002, 'number frame of wrong length') };
        frames.push({ type, value: payload.readUIntBE(0, NUMBER_BYTES) });
        break;
      default:
        return { frames, error: new WireError('malformed_frame', 1002, `unknown frame type ${type}`) };
    }
  }
  return { frames };
}

/**
 * Close codes a client may send, as for the WebSocket API's close(): 1000 or
 * 3000–4999. Reason ≤ 123 bytes of valid UTF-8 (what fits a WebSocket Close frame).
 */
function decodeClosePayload(payload: Buffer): { code: number; reason: string } | WireError {
  if (payload.length < 2 || payload.length > 125) return new WireError('invalid_close', 1002, 'close frame of wrong length');
  const code = payload.readUInt16BE(0);
  if (!isSendableCloseCode(code)) return new WireError('invalid_close', 1002, `close code ${code} not allowed`);
  const reason = payload.subarray(2);
  if (!isUtf8(reason)) return new WireError('invalid_utf8', 1007, 'close reason is not valid UTF-8');
  return { code, reason: reason.toString('utf8') };
}

/** Codes that may appear on the wire (RFC 6455 §7.4; 1004–1006 and 1015 never). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** The key a body's first frame carries, or undefined when it does not start with a well-formed KEY frame. */
export function keyOf(prefix: Buffer): Buffer | undefined {
  if (prefix.length < KEY_FRAME_BYTES || prefix[0] !== FrameType.KEY || prefix.readUInt32BE(1) !== SESSION_KEY_BYTES) return undefined;
  return prefix.subarray(FRAME_HEADER_BYTES, KEY_FRAME_BYTES);
}

export function encodeKey(key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(KEY_FRAME_BYTES);
  out[0] = FrameType.KEY;
  out.writeUInt32BE(SESSION_KEY_BYTES, 1);
  key.copy(out, FRAME_HEADER_BYTES);
  return out;
}
