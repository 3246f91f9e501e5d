/**
 * The PROXY protocol (HAProxy, v1 text and v2 binary) on listeners that enable
 * it: a load balancer in front of the gateway states the original client
 * address in a header before the first byte of TLS or HTTP. The header is read
 * off the raw TCP socket, the socket is then handed to the HTTP(S) server with
 * the bytes after the header put back. Anything malformed, or a header that
 * does not arrive within the timeout, drops the connection.
 */
import { isIP, type Socket } from 'node:net';

export interface ProxyHeader {
  version: 1 | 2;
  /** false for v1 `UNKNOWN` and v2 `LOCAL` (health checks): use the socket's own addresses. */
  proxied: boolean;
  sourceAddress?: string;
  sourcePort?: number;
  destinationAddress?: string;
  destinationPort?: number;
}

export type ProxyParse =
  | { status: 'incomplete' }
  | { status: 'invalid'; reason: string }
  | { status: 'ok'; header: ProxyHeader; length: number };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** v1: at most 107 bytes including CRLF (spec §2.1). */
const V1_MAX = 107;
/** v2: we accept at most this much address + TLV data (the spec allows 64 KiB; real balancers send < 1 KiB). */
const V2_MAX_PAYLOAD = 2048;

/** Parse a PROXY header at the start of `buf`. */
export function parseProxyHeader(buf: Buffer): ProxyParse {
  if (buf.length === 0) return { status: 'incomplete' };
  if (buf[0] === 0x0d) return parseV2(buf);
  if (buf[0] === 0x50) return parseV1(buf);
  return { status: 'invalid', reason: 'no PROXY header' };
}

function parseV1(buf: Buffer): ProxyParse {
  const prefixLen = Math.min(buf.length, V1_PREFIX.length);
  if (buf.compare(V1_PREFIX, 0, prefixLen, 0, prefixLen) !== 0) return { status: 'invalid', reason: 'no PROXY header' };
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return buf.length >= V1_MAX ? { status: 'invalid', reason: 'v1 header too long' } : { status: 'incomplete' };
  if (end + 2 > V1_MAX) return { status: 'invalid', reason: 'v1 header too long' };
  const line = buf.toString('latin1', 0, end);
  const parts = line.split(' ');
  if (parts[1] === 'UNKNOWN') return { status: 'ok', header: { version: 1, proxied: false }, length: end + 2 };
  if (parts.length !== 6) return { status: 'invalid', reason: 'v1 header has wrong field count' };
  const [, proto, src, dst, sport, dport] = parts;
  const family = proto === 'TCP4' ? 4 : proto === 'TCP6' ? 6 : 0;
  if (family === 0) return { status: 'invalid', reason: 'v1 protocol not TCP4/TCP6' };
  if (isIP(src) !== family || isIP(dst) !== family) return { status: 'invalid', reason: 'v1 address invalid' };
  const sp = v1Port(sport);
  const dp = v1Port(dport);
  if (sp === undefined || dp === undefined) return { status: 'invalid', reason: 'v1 port invalid' };
  return {
    status: 'ok',
    header: { version: 1, proxied: true, sourceAddress: src, sourcePort: sp, destinationAddress: dst, destinationPort: dp },
    length: end + 2,
  };
}

function v1Port(s: string): number | undefined {
  // Decimal without leading zeros (spec), 0..65535.
  if (!/^(0|[1-9]\d{0,4})$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 65535 ? n : undefined;
}

function parseV2(buf: Buffer): ProxyParse {
  const sigLen = Math.min(buf.length, V2_SIGNATURE.length);
  if (buf.compare(V2_SIGNATURE, 0, sigLen, 0, sigLen) !== 0) return { status: 'invalid', reason: 'no PROXY header' };
  if (buf.length < 16) return { status: 'incomplete' };
  const verCmd = buf[12];
  if (verCmd >> 4 !== 2) return { status: 'invalid', reason: 'v2 version is not 2' };
  const command = verCmd & 0x0f;
  if (command > 1) return { status: 'invalid', reason: 'v2 command unknown' };
  const famProto = buf[13];
  const payload = buf.readUInt16BE(14);
  if (payload > V2_MAX_PAYLOAD) return { status: 'invalid', reason: 'v2 header too long' };
  if (buf.length < 16 + payload) return { status: 'incomplete' };
  const length = 16 + payload;
  if (command === 0) return { status: 'ok', header: { version: 2, proxied: false }, length };
  const family = famProto >> 4;
  const transport = famProto & 0x0f;
  // UNSPEC or UNIX: nothing we can key limits on; treat like LOCAL (spec §2.2 says to ignore the addresses).
  if (family === 0 || family === 3) return { status: 'ok', header: { version: 2, proxied: false }, length };
  if (transport !== 1 && transport !== 2) return { status: 'invalid', reason: 'v2 transport unknown' };
  if (family === 1) {
    if (payload < 12) return { status: 'invalid', reason: 'v2 IPv4 block too short' };
    return {
      status: 'ok',
      header: {
        version: 2, proxied: true,
        sourceAddress: ipv4(buf, 16), destinationAddress: ipv4(buf, 20),
        sourcePort: buf.readUInt16BE(24), destinationPort: buf.readUInt16BE(26),
      },
      length,
    };
  }
  if (family === 2) {
    if (payload < 36) return { status: 'invalid', reason: 'v2 IPv6 block too short' };
    return {
      status: 'ok',
      header: {
        version: 2, proxied: true,
        sourceAddress: ipv6(buf, 16), destinationAddress: ipv6(buf, 32),
        sourcePort: buf.readUInt16BE(48), destinationPort: buf.readUInt16BE(50),
      },
      length,
    };
  }
  return { status: 'invalid', reason: 'v2 address family unknown' };
}

function ipv4(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

function ipv6(buf: Buffer, at: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(at + i * 2).toString(16));
  return groups.join(':');
}

const headers = new WeakMap<object, ProxyHeader>();

/** The PROXY header a socket (or the TLS socket wrapping it) arrived with. */
export function proxyHeaderOf(socket: object): ProxyHeader | undefined {
  const h = headers.get(socket);
  if (h) return h;
  const parent = (socket as { _parent?: object })._parent;
  return parent ? headers.get(parent) : undefined;
}

/**
 * Read the PROXY header off `socket`, then call `accept(socket)` with the bytes
 * after the header put back. Malformed or late → the socket is destroyed and
 * `reject(reason)` is told why.
 */
export function readProxyHeader(
  socket: Socket,
  timeoutMs: number,
  accept: (socket: Socket) => void,
  reject: (reason: string) => void,
): void {
  let buffered: Buffer = Buffer.alloc(0);
  const fail = (reason: string): void => {
    cleanup();
    socket.destroy();
    reject(reason);
  };
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const r = parseProxyHeader(buffered);
    if (r.status === 'incomplete') {
      if (buffered.length > 16 + V2_MAX_PAYLOAD) fail('header too long');
      return;
    }
    if (r.status === 'invalid') {
      fail(r.reason);
      return;
    }
    cleanup();
    socket.pause();
    headers.set(socket, r.header);
    if (buffered.length > r.length) socket.unshift(buffered.subarray(r.length));
    accept(socket);
  };
  const onEnd = (): void => fail('closed before the header');
  const onError = (): void => fail('socket error');
  // The verdict waits for the I/O of this turn of the event loop: when the gateway's own loop stalled
  // past the deadline (load, a long GC), bytes that arrived in time are read first, not refused unread.
  let verdict: NodeJS.Immediate | undefined;
  const timer = setTimeout(() => { verdict = setImmediate(fail, 'header timeout'); }, timeoutMs);
  const cleanup = (): void => {
    clearTimeout(timer);
    if (verdict) clearImmediate(verdict);
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('error', onError);
  };
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
}
