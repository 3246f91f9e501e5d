/**
 * Fuzz targets: one per parser that reads bytes from the network. Each takes
 * one input of arbitrary bytes and throws only when it finds a bug — an
 * exception that is not the parser's typed refusal, a limit not kept, or an
 * outcome that depends on how the bytes were cut into reads. The first input
 * byte chooses the cut (1 to 64 bytes per read, or the whole input), so the
 * fuzzer explores chops as well as content.
 *
 * The STOMP and MQTT inspectors' targets are in inspectors.ts.
 *
 * Used by the short property run in `npm test` (test/unit/fuzz/) and the long
 * run of scripts/fuzz.ts; inputs that ever broke a target are kept in
 * test/fuzz/crashes/ and replayed by the unit test.
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { FrameParser, type FrameParserOptions } from '../../src/websocket/frame-parser.js';
import { HandshakeError, validateUpgradeRequest } from '../../src/websocket/handshake.js';
import { parseResponseHead } from '../../src/websocket/client.js';
import { parseProxyHeader } from '../../src/front/proxy-protocol.js';
import { resolveClientAddress } from '../../src/front/forwarded.js';
import { validHostHeader, hostWithoutPort } from '../../src/http/host.js';
import { parseTokenList } from '../../src/http/tokens.js';
import { parseOrigin } from '../../src/http/origin.js';
import { CidrSet } from '../../src/http/cidr.js';
import { decodeFrames, FrameType, KEY_FRAME_BYTES, keyOf, SESSION_KEY_BYTES } from '../../src/fallback/wire.js';
import { INSPECTOR_TARGETS } from './inspectors.js';
import { chopOf, pieces } from './script.js';

export interface FuzzTarget {
  readonly name: string;
  /** One input; returns normally unless the input found a bug. */
  run(data: Uint8Array): void;
}

// ---------------------------------------------------------------- WebSocket frames

const FRAME_LIMITS: FrameParserOptions = { expectMasked: true, maxFrame: 200, maxMessage: 300, maxFragments: 8 };

/** Everything a parser told its handler, in order, as comparable text. */
function parseFrames(input: Buffer, chop: number, maskedBinary: boolean): string[] {
  const events: string[] = [];
  let message: Buffer[] = [];
  let length = 0;
  const parser: FrameParser = new FrameParser(FRAME_LIMITS, {
    onData(data, isBinary, first, fin) {
      if (first) { message = []; length = 0; }
      const mask = parser.pieceMask;
      const plain = Buffer.from(data);
      if (mask !== null) for (let i = 0; i < plain.length; i++) plain[i] ^= mask[i & 3];
      message.push(plain);
      length += data.length;
      assert.ok(length <= FRAME_LIMITS.maxMessage, `a message of ${length} bytes passed maxMessage`);
      if (fin) events.push(`${isBinary ? 'bin' : 'text'}:${Buffer.concat(message).toString('hex')}`);
    },
    onPing(payload) { events.push(`ping:${payload.toString('hex')}`); },
    onPong(payload) { events.push(`pong:${payload.toString('hex')}`); },
    onClose(code, reason) { events.push(`close:${code}:${reason}`); },
    onError(code) { events.push(`error:${code}`); },
  });
  parser.maskedBinary = maskedBinary;
  // The parser unmasks in place: each run gets its own copy.
  for (const p of pieces(Buffer.from(input), chop)) parser.push(p);
  return events;
}

const frameParser: FuzzTarget = {
  name: 'frame-parser',
  run(data) {
    const input = Buffer.from(data.subarray(1));
    const whole = parseFrames(input, 0, false);
    const cut = parseFrames(input, chopOf(data) || 1, data.length > 1 && (data[1] & 1) === 1);
    // After an error the valid prefix may end mid-message differently; complete events must agree.
    assert.deepEqual(cut, whole, 'the outcome depends on how the bytes were cut');
    assert.ok(whole.filter((e) => e.startsWith('error:') || e.startsWith('close:')).length <= 1, 'at most one end');
  },
};

// ---------------------------------------------------------------- HTTP heads

/** A request head as Node's parser would hand it over: rawHeaders and the folded headers object. */
function requestOf(text: string): { method: string; httpVersion: string; headers: IncomingHttpHeaders; rawHeaders: string[] } {
  const [requestLine = '', ...lines] = text.split('\r\n');
  const [method = '', , version = ''] = requestLine.split(' ');
  const rawHeaders: string[] = [];
  const headers: Record<string, string | string[]> = {};
  for (const line of lines) {
    const c = line.indexOf(':');
    if (c <= 0) continue;
    const name = line.slice(0, c);
    const value = line.slice(c + 1).trim();
    rawHeaders.push(name, value);
    const key = name.toLowerCase();
    const prev = headers[key];
    if (prev === undefined) headers[key] = value;
    else if (key !== 'host') headers[key] = Array.isArray(prev) ? [...prev, value] : `${prev}, ${value}`;
  }
  return { method, httpVersion: version.replace(/^HTTP\//, ''), headers, rawHeaders };
}

const TRUSTED = new CidrSet(['10.0.0.0/8', '127.0.0.1', 'fd00::/8']);

const handshake: FuzzTarget = {
  name: 'handshake',
  run(data) {
    const text = Buffer.from(data).toString('latin1');
    const req = requestOf(text);
    try {
      const info = validateUpgradeRequest(req, { maxProtocolTokens: 16, maxProtocolBytes: 4096 });
      assert.equal(Buffer.from(info.key, 'base64').length, 16, 'an accepted key is 16 bytes of base64');
      assert.ok(info.protocols.length <= 16, 'at most 16 subprotocols accepted');
    } catch (err) {
      if (!(err instanceof HandshakeError)) throw err;
      assert.ok(err.status >= 400 && err.status < 500, `a refusal is a 4xx, not ${err.status}`);
    }
    const host = req.headers.host;
    if (typeof host === 'string' && validHostHeader(host)) {
      assert.doesNotMatch(hostWithoutPort(host), /[\s/\\@]/, 'a valid Host yields a plain name');
    }
    const tokens = parseTokenList(text.slice(0, 5000), { maxBytes: 4096, maxTokens: 16 });
    if (tokens.ok) assert.ok(tokens.tokens.length <= 16 && new Set(tokens.tokens).size === tokens.tokens.length, 'tokens bounded and unique');
    const origin = parseOrigin(text.slice(0, 2048));
    if (origin !== undefined) assert.ok(text.length <= 2048, 'parsed origins come from bounded input');
    for (const forwardedHeader of ['x-forwarded-for', 'forwarded'] as const) {
      const peer = { address: '10.1.2.3', port: 1, source: 'socket' as const };
      const client = resolveClientAddress(peer, req.headers, TRUSTED, forwardedHeader);
      assert.ok(client === peer || client.source === forwardedHeader, 'the client comes from the peer or the configured header only');
    }
    try {
      const head = parseResponseHead(text);
      assert.ok(head.statusCode >= 100 && head.statusCode <= 999, 'a status of three digits');
    } catch (err) {
      if (!(err instanceof HandshakeError)) throw err;
    }
    const proxy = parseProxyHeader(Buffer.from(data));
    if (proxy.status === 'ok') assert.ok(proxy.length <= data.length, 'a PROXY header inside the input');
  },
};

// ---------------------------------------------------------------- fallback wire format

const fallbackWire: FuzzTarget = {
  name: 'fallback-wire',
  run(data) {
    const body = Buffer.from(data);
    // As the session endpoints read a body: a KEY frame first (binding it to the session), then the frames.
    const key = keyOf(body.subarray(0, KEY_FRAME_BYTES));
    if (key !== undefined) {
      assert.equal(key.length, SESSION_KEY_BYTES, 'a key is exactly SESSION_KEY_BYTES long');
      assert.equal(body[0], FrameType.KEY, 'a key is only taken from a KEY frame');
    }
    const rest = key === undefined ? body : body.subarray(KEY_FRAME_BYTES);
    const { frames, error } = decodeFrames(rest, { maxMessage: 1024, maxFrames: 64 });
    assert.ok(frames.length <= 64, 'at most maxFrames frames');
    for (const f of frames) {
      assert.notEqual(f.type as number, FrameType.KEY, 'a KEY frame after the first is never taken as a frame');
      if (f.type === FrameType.TEXT || f.type === FrameType.BINARY) assert.ok(f.payload.length <= 1024, 'no message over maxMessage');
    }
    if (error) assert.ok([1002, 1007, 1009].includes(error.closeCode), `a close code a WebSocket would use, not ${error.closeCode}`);
  },
};

export const TARGETS: readonly FuzzTarget[] = [frameParser, handshake, fallbackWire, ...INSPECTOR_TARGETS];
