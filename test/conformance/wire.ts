/**
 * The fuzzing client's wire layer: a raw TCP WebSocket client that can put any
 * byte on the wire (any opcode, RSV bits, FIN, length, chopping) and a strict
 * incremental reader for what the server sends back.
 *
 * Deliberately independent of `src/websocket/`: the suite judges that engine,
 * so it must not share code with it.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import net from 'node:net';
import zlib from 'node:zlib';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface OutFrame {
  opcode: number;
  payload: Buffer;
  fin?: boolean;
  /** RSV1..3 as a number 0..7 (RSV1 is the high bit, as in Autobahn). */
  rsv?: number;
}

/**
 * Masking keys come from a pool refilled in bulk: category 9 sends 65,536-frame
 * messages, and one crypto call per frame would dominate the run.
 */
const keyPool = Buffer.alloc(4096);
let keyPos = keyPool.length;
function nextMaskKey(): Buffer {
  if (keyPos === keyPool.length) { randomFillSync(keyPool); keyPos = 0; }
  const key = Buffer.from(keyPool.subarray(keyPos, keyPos + 4));
  keyPos += 4;
  return key;
}

/** Encode one client frame, masked with a fresh random key (clients must mask). */
export function encodeFrame(frame: OutFrame): Buffer {
  const { opcode, payload } = frame;
  const fin = frame.fin ?? true;
  const rsv = frame.rsv ?? 0;
  const len = payload.length;
  const extLen = len <= 125 ? 0 : len <= 0xffff ? 2 : 8;
  const header = Buffer.alloc(2 + extLen + 4);
  header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f);
  if (extLen === 0) header[1] = 0x80 | len;
  else if (extLen === 2) { header[1] = 0x80 | 126; header.writeUInt16BE(len, 2); }
  else { header[1] = 0x80 | 127; header.writeBigUInt64BE(BigInt(len), 2); }
  const mask = nextMaskKey();
  mask.copy(header, 2 + extLen);
  return Buffer.concat([header, maskBytes(payload, mask)]);
}

/** The header of a frame whose payload follows in separate writes (Autobahn's beginMessageFrame). */
export function encodeFrameHeader(opcode: number, length: number, fin: boolean): { header: Buffer; mask: Buffer } {
  const extLen = length <= 125 ? 0 : length <= 0xffff ? 2 : 8;
  const header = Buffer.alloc(2 + extLen + 4);
  header[0] = (fin ? 0x80 : 0) | (opcode & 0x0f);
  if (extLen === 0) header[1] = 0x80 | length;
  else if (extLen === 2) { header[1] = 0x80 | 126; header.writeUInt16BE(length, 2); }
  else { header[1] = 0x80 | 127; header.writeBigUInt64BE(BigInt(length), 2); }
  const mask = nextMaskKey();
  mask.copy(header, 2 + extLen);
  return { header, mask };
}

/** XOR with the 4-byte key, starting at key offset `offset` (for payloads written in pieces). */
export function maskBytes(data: Buffer, mask: Buffer, offset = 0): Buffer {
  const out = Buffer.allocUnsafe(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] ^ mask[(i + offset) & 3];
  return out;
}

export interface InFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/**
 * Incremental reader of server frames. Keeps the received chunks in a list and
 * only concatenates when a whole frame is there, so a 16 MiB echo does not cost
 * quadratic copying.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(data: Buffer): InFrame[] {
    this.chunks.push(data);
    this.buffered += data.length;
    const frames: InFrame[] = [];
    for (;;) {
      const frame = this.next();
      if (!frame) return frames;
      frames.push(frame);
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0];
      const want = n - filled;
      if (head.length <= want) {
        head.copy(out, filled);
        filled += head.length;
        this.chunks.shift();
      } else {
        head.copy(out, filled, 0, want);
        this.chunks[0] = head.subarray(want);
        filled += want;
      }
    }
    this.buffered -= n;
    return out;
  }

  private next(): InFrame | undefined {
    if (this.buffered < 2) return undefined;
    let head = this.peek(2);
    const b0 = head[0];
    const b1 = head[1];
    const masked = (b1 & 0x80) !== 0;
    let len = b1 & 0x7f;
    let headerLen = 2;
    if (len === 126) headerLen += 2;
    else if (len === 127) headerLen += 8;
    if (masked) headerLen += 4;
    if (this.buffered < headerLen) return undefined;
    head = this.peek(headerLen);
    if (len === 126) len = head.readUInt16BE(2);
    else if (len === 127) {
      const big = head.readBigUInt64BE(2);
      if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`server frame length ${big} is absurd`);
      len = Number(big);
    }
    if (this.buffered < headerLen + len) return undefined;
    const header = this.take(headerLen);
    let payload = this.take(len);
    if (masked) payload = maskBytes(payload, header.subarray(headerLen - 4, headerLen));
    return { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 7, opcode: b0 & 0x0f, masked, payload };
  }
}

export interface RawConnection {
  socket: net.Socket;
  /** Bytes that arrived after the 101 response head (frames the server sent at once). */
  leftover: Buffer;
  /** Response header fields, names lower-cased. */
  headers: Record<string, string>;
}

export interface OpenOptions {
  /** Extra request header lines, e.g. an extension offer. */
  headers?: Record<string, string>;
  timeoutMs?: number;
}

/**
 * Open a TCP connection and perform the opening handshake by hand. Resolves
 * once a valid 101 (with the right Sec-WebSocket-Accept) has arrived.
 */
export function openRaw(host: string, port: number, path: string, opts: OpenOptions = {}): Promise<RawConnection> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`opening handshake did not finish within ${timeoutMs} ms`)), timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    socket.on('error', fail);
    socket.on('connect', () => {
      socket.write([
        `GET ${path} HTTP/1.1`,
        `Host: ${host}:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${key}`,
        'Sec-WebSocket-Version: 13',
        'User-Agent: gatehouse-conformance',
        ...Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
        '', '',
      ].join('\r\n'));
    });
    socket.on('end', () => fail(new Error(`connection closed during the opening handshake: ${JSON.stringify(head.toString('latin1'))}`)));
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.removeAllListeners('end');
      socket.off('error', fail);
      clearTimeout(timer);
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const status = lines[0];
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const accept = headers['sec-websocket-accept'];
      const expected = createHash('sha1').update(key + WS_GUID).digest('base64');
      if (!/^HTTP\/1\.1 101 /.test(status)) return fail(new Error(`opening handshake refused: ${status}`));
      if (accept !== expected) return fail(new Error(`bad Sec-WebSocket-Accept ${accept ?? '(none)'}`));
      resolve({ socket, leftover: head.subarray(end + 4), headers });
    };
    socket.on('data', onData);
  });
}

/**
 * The client's side of permessage-deflate (RFC 7692) for the compression
 * cases, as wstest's client does it: compress each message with a sync flush
 * and drop the 0x00 0x00 0xff 0xff tail; inflate each received compressed
 * message with the tail appended. Context takeover, where the server's
 * response allows it, is the LZ77 window carried over: here the previous
 * messages' last window of plain bytes given to zlib as its preset
 * dictionary, which is the same thing for a stream that was sync-flushed.
 * Written on node:zlib directly, sharing nothing with src/websocket/, and
 * synchronous so that the case script stays in step with the frames.
 */
export class ClientDeflate {
  readonly clientNoContextTakeover: boolean;
  readonly serverNoContextTakeover: boolean;
  readonly clientWindowBits: number;
  readonly serverWindowBits: number;
  /** Plain bytes sent / received so far (their last window), for context takeover. */
  private sentWindow: Buffer = Buffer.alloc(0);
  private receivedWindow: Buffer = Buffer.alloc(0);

  /** `response`: the server's Sec-WebSocket-Extensions. Throws when it is not one permessage-deflate element with valid parameters. */
  constructor(response: string, offered: { clientMaxWindowBits?: boolean }) {
    const parts = response.split(';').map((p) => p.trim());
    if (parts[0] !== 'permessage-deflate' || response.includes(',')) throw new Error(`unexpected extension response: ${response}`);
    const params = new Map<string, string | true>();
    for (const p of parts.slice(1)) {
      const [name, value] = p.split('=').map((x) => x.trim());
      if (params.has(name)) throw new Error(`repeated parameter ${name} in ${response}`);
      params.set(name, value === undefined ? true : value.replace(/^"(.*)"$/, '$1'));
    }
    const bits = (name: string): number => {
      const v = params.get(name);
      if (v === undefined) return 15;
      if (v === true || !/^(8|9|1[0-5])$/.test(v)) throw new Error(`invalid ${name} in ${response}`);
      return Number(v);
    };
    for (const name of params.keys()) {
      if (!['server_no_context_takeover', 'client_no_context_takeover', 'server_max_window_bits', 'client_max_window_bits'].includes(name)) {
        throw new Error(`unknown parameter ${name} in ${response}`);
      }
    }
    if (params.has('client_max_window_bits') && !offered.clientMaxWindowBits) throw new Error('client_max_window_bits was not offered');
    this.clientNoContextTakeover = params.has('client_no_context_takeover');
    this.serverNoContextTakeover = params.has('server_no_context_takeover');
    // zlib makes no raw 8-bit window: 9 for our compressor (as every zlib-based peer does), and 9 is enough to inflate 8.
    this.clientWindowBits = Math.max(9, bits('client_max_window_bits'));
    this.serverWindowBits = Math.max(9, bits('server_max_window_bits'));
  }

  /** The compressed payload of one message (§7.2.1). */
  compress(message: Buffer): Buffer {
    const dictionary = this.clientNoContextTakeover || this.sentWindow.length === 0 ? undefined : this.sentWindow;
    const out = zlib.deflateRawSync(message, { windowBits: this.clientWindowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH, dictionary });
    if (!this.clientNoContextTakeover) this.sentWindow = lastWindow(this.sentWindow, message, this.clientWindowBits);
    if (out.length < 4 || out.readUInt32BE(out.length - 4) !== 0x0000ffff) throw new Error('sync flush without its tail');
    return out.subarray(0, out.length - 4);
  }

  /** The plain payload of one received compressed message (§7.2.2). Throws on invalid data. */
  inflate(payload: Buffer): Buffer {
    const dictionary = this.serverNoContextTakeover || this.receivedWindow.length === 0 ? undefined : this.receivedWindow;
    const plain = zlib.inflateRawSync(Buffer.concat([payload, Buffer.from([0x00, 0x00, 0xff, 0xff])]),
      { windowBits: this.serverWindowBits, finishFlush: zlib.constants.Z_SYNC_FLUSH, dictionary });
    if (!this.serverNoContextTakeover) this.receivedWindow = lastWindow(this.receivedWindow, plain, this.serverWindowBits);
    return plain;
  }

  close(): void {
    this.sentWindow = Buffer.alloc(0);
    this.receivedWindow = Buffer.alloc(0);
  }
}

/** The last 2^bits bytes of `before` followed by `added`: the LZ77 window after them. */
function lastWindow(before: Buffer, added: Buffer, bits: number): Buffer<ArrayBuffer> {
  const size = 1 << bits;
  if (added.length >= size) return Buffer.from(added.subarray(added.length - size));
  const keep = Math.min(before.length, size - added.length);
  return Buffer.concat([before.subarray(before.length - keep), added]);
}
