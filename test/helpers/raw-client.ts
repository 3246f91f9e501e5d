/**
 * A raw-socket WebSocket test client: writes arbitrary bytes (any opcode, RSV
 * bits, mask or none, any length encoding, chopped writes) and reads what the
 * server answers, HTTP head and frames. It talks to any port, so every suite
 * (codec, gateway, fallback) can reuse it.
 */
import net from 'node:net';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  /** default true */
  fin?: boolean;
  /** RSV1..3 as a 3-bit number (4 = RSV1, 2 = RSV2, 1 = RSV3) */
  rsv?: number;
  /** true (random key, default), false (unmasked) or a given 4-byte key */
  mask?: boolean | Buffer;
  /** 'minimal' (default), or force the 16-bit / 64-bit extended length form */
  lengthEncoding?: 'minimal' | '16' | '64';
  /** Declare this length instead of the payload's (for lying headers). */
  declaredLength?: number;
  /** Raw high 32 bits of a 64-bit length (e.g. 0x80000000 to set the MSB). */
  lengthHigh?: number;
}

/** Build the bytes of one frame. */
export function buildFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload, 'utf8') : (spec.payload ?? Buffer.alloc(0));
  const len = spec.declaredLength ?? payload.length;
  const fin = spec.fin ?? true;
  const rsv = spec.rsv ?? 0;
  const maskOpt = spec.mask ?? true;
  const key = maskOpt === false ? null : maskOpt === true ? randomBytes(4) : maskOpt;
  let enc = spec.lengthEncoding ?? 'minimal';
  if (spec.lengthHigh !== undefined) enc = '64';
  if (enc === 'minimal') enc = len < 126 ? ('minimal' as const) : len < 0x10000 ? '16' : '64';
  const extLen = enc === 'minimal' ? 0 : enc === '16' ? 2 : 8;
  const head = Buffer.alloc(2 + extLen + (key ? 4 : 0));
  head[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (spec.opcode & 0x0f);
  const m = key ? 0x80 : 0;
  if (enc === 'minimal') head[1] = m | len;
  else if (enc === '16') {
    head[1] = m | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = m | 127;
    head.writeUInt32BE(spec.lengthHigh ?? Math.floor(len / 0x100000000), 2);
    head.writeUInt32BE(len >>> 0, 6);
  }
  const body = Buffer.from(payload);
  if (key) {
    key.copy(head, 2 + extLen);
    for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  }
  return Buffer.concat([head, body]);
}

/** A Close frame payload: code (or none) + reason bytes. */
export function closePayload(code?: number, reason: Buffer | string = ''): Buffer {
  if (code === undefined) return Buffer.alloc(0);
  const r = typeof reason === 'string' ? Buffer.from(reason) : reason;
  const b = Buffer.alloc(2 + r.length);
  b.writeUInt16BE(code, 0);
  r.copy(b, 2);
  return b;
}

export interface ServerFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  /** lower-case names; repeated headers joined with ", " */
  headers: Record<string, string>;
  rawHead: string;
}

export interface HandshakeOptions {
  path?: string;
  host?: string | null;
  method?: string;
  httpVersion?: string;
  key?: string | null;
  version?: string | null;
  protocols?: string[];
  /** Extra headers; an array value repeats the header line. */
  headers?: Record<string, string | string[]>;
  /** Standard headers to leave out entirely (lower-case names). */
  omit?: string[];
}

export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** Parse one server frame at the start of buf; undefined if incomplete. */
export function parseServerFrame(buf: Buffer): { frame: ServerFrame; size: number } | undefined {
  if (buf.length < 2) return undefined;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let p = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    p = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = buf.readUInt32BE(2) * 0x100000000 + buf.readUInt32BE(6);
    p = 10;
  }
  const keyAt = p;
  if (masked) p += 4;
  if (buf.length < p + len) return undefined;
  const payload = Buffer.from(buf.subarray(p, p + len));
  if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[keyAt + (i & 3)];
  return {
    frame: { fin: (buf[0] & 0x80) !== 0, rsv: (buf[0] >> 4) & 7, opcode: buf[0] & 0x0f, masked, payload },
    size: p + len,
  };
}

export class RawClient {
  readonly socket: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private closedFlag = false;
  private wake: (() => void) | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
      this.wake?.();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake?.();
    });
    socket.on('close', () => {
      this.closedFlag = true;
      this.wake?.();
    });
    socket.on('error', () => {
      // A reset by the server is an outcome tests observe through expectClosed().
    });
  }

  static connect(opts: { port: number; host?: string; tls?: boolean | tls.ConnectionOptions }): Promise<RawClient> {
    const host = opts.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      const socket = opts.tls
        ? tls.connect({ host, port: opts.port, ...(typeof opts.tls === 'object' ? opts.tls : {}) })
        : net.connect({ host, port: opts.port });
      socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
        socket.removeListener('error', reject);
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** true once the server ended or closed the connection */
  get closed(): boolean {
    return this.ended || this.closedFlag;
  }

  /** Bytes received and not yet consumed by a read. */
  get unread(): Buffer {
    return this.buf;
  }

  /** Write bytes, optionally `chop` bytes per write with `delayMs` between writes. */
  async write(bytes: Buffer | string, opts: { chop?: number; delayMs?: number } = {}): Promise<void> {
    const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
    const chop = opts.chop ?? b.length;
    for (let i = 0; i < b.length || (i === 0 && b.length === 0); i += Math.max(chop, 1)) {
      const piece = b.subarray(i, i + Math.max(chop, 1));
      await new Promise<void>((resolve, reject) => {
        this.socket.write(piece, (err) => (err ? reject(err) : resolve()));
      });
      if (opts.delayMs !== undefined && i + chop < b.length) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (b.length === 0) break;
    }
  }

  /** Build a frame (see buildFrame). */
  frame(spec: FrameSpec): Buffer {
    return buildFrame(spec);
  }

  /** Build and write a frame. */
  sendFrame(spec: FrameSpec, opts: { chop?: number; delayMs?: number } = {}): Promise<void> {
    return this.write(buildFrame(spec), opts);
  }

  /** The request bytes of a WebSocket upgrade (valid by default; override anything). */
  static handshakeRequest(opts: HandshakeOptions = {}): string {
    const omit = new Set(opts.omit ?? []);
    const lines = [`${opts.method ?? 'GET'} ${opts.path ?? '/'} HTTP/${opts.httpVersion ?? '1.1'}`];
    const std: [string, string | null | undefined][] = [
      ['Host', opts.host === undefined ? 'localhost' : opts.host],
      ['Upgrade', 'websocket'],
      ['Connection', 'Upgrade'],
      ['Sec-WebSocket-Key', opts.key === undefined ? SAMPLE_KEY : opts.key],
      ['Sec-WebSocket-Version', opts.version === undefined ? '13' : opts.version],
    ];
    const extra = opts.headers ?? {};
    const extraNames = new Set(Object.keys(extra).map((k) => k.toLowerCase()));
    for (const [k, v] of std) {
      if (v === null || omit.has(k.toLowerCase()) || extraNames.has(k.toLowerCase())) continue;
      lines.push(`${k}: ${v}`);
    }
    if (opts.protocols && opts.protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${opts.protocols.join(', ')}`);
    for (const [k, v] of Object.entries(extra)) {
      for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
    }
    return lines.join('\r\n') + '\r\n\r\n';
  }

  /** Send an upgrade request and read the HTTP response head. */
  async sendHandshake(opts: HandshakeOptions = {}, timeoutMs = 2000): Promise<HttpResponse> {
    await this.write(RawClient.handshakeRequest(opts));
    return this.readHttpResponse(timeoutMs);
  }

  /** Upgrade at `path` with extra headers (a valid request otherwise). */
  upgrade(path: string, headers: Record<string, string | string[]> = {}, timeoutMs = 2000): Promise<HttpResponse> {
    return this.sendHandshake({ path, headers }, timeoutMs);
  }

  /** Read an HTTP response head; bytes after it stay unread (frames). */
  readHttpResponse(timeoutMs = 2000): Promise<HttpResponse> {
    return this.waitFor(() => {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const rawHead = this.buf.subarray(0, end).toString('latin1');
      this.buf = this.buf.subarray(end + 4);
      const lines = rawHead.split('\r\n');
      const m = /^HTTP\/\d\.\d (\d{3}) ?(.*)$/.exec(lines[0]);
      if (!m) throw new Error(`bad status line: ${lines[0]}`);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const c = line.indexOf(':');
        const name = line.slice(0, c).trim().toLowerCase();
        const value = line.slice(c + 1).trim();
        headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
      }
      return { status: Number(m[1]), statusText: m[2], headers, rawHead };
    }, timeoutMs, 'HTTP response');
  }

  /** Read the next frame from the server. */
  readFrame(timeoutMs = 2000): Promise<ServerFrame> {
    return this.waitFor(() => {
      const r = parseServerFrame(this.buf);
      if (r === undefined) return undefined;
      this.buf = this.buf.subarray(r.size);
      return r.frame;
    }, timeoutMs, 'frame');
  }

  /** Read frames until a Close; returns its code (1005 when empty) and reason. */
  async readClose(timeoutMs = 2000): Promise<{ code: number; reason: string; payload: Buffer }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = await this.readFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode !== 0x8) continue;
      const code = f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005;
      return { code, reason: f.payload.subarray(2).toString('utf8'), payload: f.payload };
    }
  }

  /** Resolve once the server has closed TCP (FIN or reset). */
  expectClosed(timeoutMs = 2000): Promise<void> {
    return this.waitFor(() => (this.closed ? true : undefined), timeoutMs, 'TCP close', true).then(() => undefined);
  }

  /** Send FIN. */
  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private waitFor<T>(attempt: () => T | undefined, timeoutMs: number, what: string, closeOk = false): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): boolean => {
        let v: T | undefined;
        try {
          v = attempt();
        } catch (err) {
          done();
          reject(err);
          return true;
        }
        if (v !== undefined) {
          done();
          resolve(v);
          return true;
        }
        if (this.closed && !closeOk) {
          done();
          reject(new Error(`connection closed while waiting for ${what}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.wake = null;
      };
      if (check()) return;
      this.wake = () => {
        check();
      };
    });
  }
}
