import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  HandshakeError, acceptKey, buildClientRequest, buildUpgradeResponse, generateKey, parseSubprotocols,
  validateServerResponse, validateUpgradeRequest, type UpgradeRequestLike,
} from '../../../src/websocket/handshake.js';
import { GatehouseError } from '../../../src/errors.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** Build a request-like object from raw header pairs the way Node's parser would. */
function req(raw: [string, string][], over: Partial<UpgradeRequestLike> = {}): UpgradeRequestLike {
  const headers: Record<string, string> = {};
  for (const [k, v] of raw) {
    const n = k.toLowerCase();
    headers[n] = headers[n] === undefined ? v : `${headers[n]}, ${v}`;
  }
  return { method: 'GET', httpVersion: '1.1', headers, rawHeaders: raw.flat(), ...over };
}

const BASE: [string, string][] = [
  ['Host', 'example.com'], ['Upgrade', 'websocket'], ['Connection', 'Upgrade'],
  ['Sec-WebSocket-Key', KEY], ['Sec-WebSocket-Version', '13'],
];

function without(name: string, extra: [string, string][] = []): [string, string][] {
  return [...BASE.filter(([k]) => k.toLowerCase() !== name.toLowerCase()), ...extra];
}

function rejects(r: UpgradeRequestLike, status: number, reason: string, headers?: Record<string, string>): void {
  assert.throws(() => validateUpgradeRequest(r), (err: unknown) => {
    assert.ok(err instanceof HandshakeError, String(err));
    assert.ok(err instanceof GatehouseError);
    assert.equal(err.status, status, `status for ${reason}`);
    assert.equal(err.reason, reason);
    if (headers) assert.deepEqual(err.headers, headers);
    return true;
  });
}

describe('acceptKey', () => {
  it('RFC 6455 §1.3 example', () => {
    assert.equal(acceptKey(KEY), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  });
});

describe('validateUpgradeRequest (RFC 6455 §4.2.1)', () => {
  it('accepts a valid request and returns key, protocols, extensions', () => {
    const info = validateUpgradeRequest(req([...BASE, ['Sec-WebSocket-Protocol', 'mqtt, stomp'], ['Sec-WebSocket-Extensions', 'permessage-deflate']]));
    assert.deepEqual(info, { key: KEY, protocols: ['mqtt', 'stomp'], extensions: 'permessage-deflate' });
  });
  it('accepts case variants and Connection lists (Firefox: keep-alive, Upgrade)', () => {
    const info = validateUpgradeRequest(req([
      ['host', 'example.com'], ['upgrade', 'WebSocket'], ['connection', 'keep-alive, Upgrade'],
      ['sec-websocket-key', KEY], ['sec-websocket-version', '13'],
    ]));
    assert.equal(info.key, KEY);
    assert.deepEqual(info.protocols, []);
    assert.equal(info.extensions, undefined);
  });
  it('joins several Sec-WebSocket-Protocol lines', () => {
    const info = validateUpgradeRequest(req([...BASE, ['Sec-WebSocket-Protocol', 'a'], ['Sec-WebSocket-Protocol', 'b, c']]));
    assert.deepEqual(info.protocols, ['a', 'b', 'c']);
  });
  it('accepts Content-Length: 0', () => {
    assert.doesNotThrow(() => validateUpgradeRequest(req([...BASE, ['Content-Length', '0']])));
  });

  for (const method of ['POST', 'PUT', 'CONNECT', 'HEAD']) {
    it(`method ${method} → 405 with Allow: GET`, () => rejects(req(BASE, { method }), 405, 'method_not_allowed', { Allow: 'GET' }));
  }
  it('HTTP/1.0 → 400', () => rejects(req(BASE, { httpVersion: '1.0' }), 400, 'http_version'));
  it('no Host → 400', () => rejects(req(without('host')), 400, 'bad_host'));
  it('two Host lines → 400', () => rejects(req([...BASE, ['Host', 'other.example']]), 400, 'bad_host'));
  it('empty Host → 400', () => rejects(req(without('host', [['Host', '']])), 400, 'bad_host'));
  it('no Upgrade → 400', () => rejects(req(without('upgrade')), 400, 'bad_upgrade'));
  it('Upgrade: websocket2 → 400', () => rejects(req(without('upgrade', [['Upgrade', 'websocket2']])), 400, 'bad_upgrade'));
  it('Upgrade: h2c → 400', () => rejects(req(without('upgrade', [['Upgrade', 'h2c']])), 400, 'bad_upgrade'));
  it('Upgrade: websocket, h2c → 400', () => rejects(req(without('upgrade', [['Upgrade', 'websocket, h2c']])), 400, 'bad_upgrade'));
  it('Connection: keep-alive → 400', () => rejects(req(without('connection', [['Connection', 'keep-alive']])), 400, 'bad_connection'));
  it('Connection: upgraded (not the token) → 400', () => rejects(req(without('connection', [['Connection', 'upgraded']])), 400, 'bad_connection'));
  for (const [name, key] of [
    ['empty', ''], ['non-base64', '!!!!!!!!!!!!!!!!!!!!!!=='], ['base64url alphabet', 'dGhlIHNhbXBsZSBub25-ZQ=='],
    ['unpadded', 'dGhlIHNhbXBsZSBub25jZQ'], ['15 bytes', Buffer.alloc(15, 1).toString('base64')],
    ['17 bytes', Buffer.alloc(17, 1).toString('base64')], ['base64url chars', 'ab-_ab-_ab-_ab-_ab-_aQ=='],
    ['non-canonical padding bits', 'dGhlIHNhbXBsZSBub25jZR=='],
  ] as const) {
    it(`Sec-WebSocket-Key ${name} → 400`, () => rejects(req(without('sec-websocket-key', [['Sec-WebSocket-Key', key]])), 400, 'bad_key'));
  }
  it('missing Sec-WebSocket-Key → 400', () => rejects(req(without('sec-websocket-key')), 400, 'bad_key'));
  it('two Sec-WebSocket-Key headers → 400', () => rejects(req([...BASE, ['Sec-WebSocket-Key', KEY]]), 400, 'bad_key'));
  it('missing version → 400', () => rejects(req(without('sec-websocket-version')), 400, 'bad_version'));
  it('version abc → 400', () => rejects(req(without('sec-websocket-version', [['Sec-WebSocket-Version', 'abc']])), 400, 'bad_version'));
  it('version "13, 8" → 400', () => rejects(req(without('sec-websocket-version', [['Sec-WebSocket-Version', '13, 8']])), 400, 'bad_version'));
  it('two version headers → 400', () => rejects(req([...BASE, ['Sec-WebSocket-Version', '13']]), 400, 'bad_version'));
  for (const v of ['8', '7', '14']) {
    it(`version ${v} → 426 with Sec-WebSocket-Version: 13`, () =>
      rejects(req(without('sec-websocket-version', [['Sec-WebSocket-Version', v]])), 426, 'unsupported_version', { 'Sec-WebSocket-Version': '13' }));
  }
  it('Content-Length: 10 → 400', () => rejects(req([...BASE, ['Content-Length', '10']]), 400, 'upgrade_with_body'));
  it('Transfer-Encoding: chunked → 400', () => rejects(req([...BASE, ['Transfer-Encoding', 'chunked']]), 400, 'upgrade_with_body'));
  it('two Content-Length headers (0 and 5) → 400', () => rejects(req([...BASE, ['Content-Length', '0'], ['Content-Length', '5']]), 400, 'upgrade_with_body'));
  it('bad subprotocol list → 400', () => rejects(req([...BASE, ['Sec-WebSocket-Protocol', 'a,,b']]), 400, 'invalid_subprotocol'));
  it('subprotocol limits apply', () => {
    assert.throws(() => validateUpgradeRequest(req([...BASE, ['Sec-WebSocket-Protocol', 'a, b, c']]), { maxProtocolTokens: 2 }),
      (e: unknown) => e instanceof HandshakeError && e.reason === 'subprotocol_limit');
  });
});

describe('parseSubprotocols', () => {
  it('parses tokens with optional whitespace', () => {
    assert.deepEqual(parseSubprotocols('mqtt'), ['mqtt']);
    assert.deepEqual(parseSubprotocols(' v12.stomp ,\tv11.stomp,chat '), ['v12.stomp', 'v11.stomp', 'chat']);
    assert.deepEqual(parseSubprotocols(undefined), []);
  });
  for (const bad of ['', 'a,,b', ',a', 'a,', 'a;q=1', '"a"', 'a b', 'a/b', 'é', 'a,(b)', ' , ']) {
    it(`rejects ${JSON.stringify(bad)} as invalid_subprotocol`, () => {
      assert.throws(() => parseSubprotocols(bad), (e: unknown) => e instanceof HandshakeError && e.status === 400 && e.reason === 'invalid_subprotocol');
    });
  }
  it('rejects duplicates', () => {
    assert.throws(() => parseSubprotocols('a, b, a'), (e: unknown) => e instanceof HandshakeError && e.status === 400 && e.reason === 'duplicate_subprotocol');
  });
  it('enforces token count and byte limits', () => {
    const seventeen = Array.from({ length: 17 }, (_, i) => `p${i}`).join(',');
    assert.throws(() => parseSubprotocols(seventeen), (e: unknown) => e instanceof HandshakeError && e.reason === 'subprotocol_limit');
    assert.equal(parseSubprotocols(Array.from({ length: 16 }, (_, i) => `p${i}`).join(',')).length, 16);
    assert.throws(() => parseSubprotocols('a'.repeat(1025)), (e: unknown) => e instanceof HandshakeError && e.reason === 'subprotocol_limit');
    assert.deepEqual(parseSubprotocols('a'.repeat(1024)), ['a'.repeat(1024)]);
  });
  it('ReDoS input (CVE-2021-32640 shape) is rejected correctly', () => {
    const evil = 'b' + ' '.repeat(16384) + 'x';
    assert.throws(() => parseSubprotocols(evil, 16, 1 << 20), (e: unknown) => e instanceof HandshakeError && e.reason === 'invalid_subprotocol');
    assert.throws(() => parseSubprotocols(evil), (e: unknown) => e instanceof HandshakeError && e.reason === 'subprotocol_limit');
  });
});

describe('server response and client request', () => {
  it('buildUpgradeResponse', () => {
    assert.equal(buildUpgradeResponse(KEY, ''),
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n');
    const r = buildUpgradeResponse(KEY, 'mqtt', { 'X-Id': '7' });
    assert.match(r, /\r\nSec-WebSocket-Protocol: mqtt\r\nX-Id: 7\r\n\r\n$/);
    assert.throws(() => buildUpgradeResponse(KEY, '', { 'X-Bad': 'a\r\nSet-Cookie: x' }), TypeError);
  });
  it('generateKey produces valid 16-byte keys that differ', () => {
    const a = generateKey();
    const b = generateKey();
    assert.notEqual(a, b);
    assert.equal(Buffer.from(a, 'base64').length, 16);
    assert.doesNotThrow(() => validateUpgradeRequest(req(without('sec-websocket-key', [['Sec-WebSocket-Key', a]]))));
  });
  it('buildClientRequest', () => {
    const r = buildClientRequest({ path: '/x?y=1', host: 'h:8080', key: KEY, protocols: ['a', 'b'], headers: { Origin: 'https://o' } });
    assert.ok(r.startsWith('GET /x?y=1 HTTP/1.1\r\nHost: h:8080\r\n'));
    assert.match(r, /\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n/);
    assert.match(r, /\r\nSec-WebSocket-Version: 13\r\n/);
    assert.match(r, /\r\nSec-WebSocket-Protocol: a, b\r\n/);
    assert.match(r, /\r\nOrigin: https:\/\/o\r\n\r\n$/);
  });

  const good = { 'upgrade': 'websocket', 'connection': 'Upgrade', 'sec-websocket-accept': acceptKey(KEY) };
  const bad502 = (res: { statusCode: number; headers: Record<string, string> }, offered: string[], reason: string): void => {
    assert.throws(() => validateServerResponse(res, KEY, offered), (e: unknown) => e instanceof HandshakeError && e.status === 502 && e.reason === reason);
  };
  it('validateServerResponse accepts a correct 101', () => {
    assert.deepEqual(validateServerResponse({ statusCode: 101, headers: good }, KEY, []), { protocol: '' });
    assert.deepEqual(validateServerResponse({ statusCode: 101, headers: { ...good, 'sec-websocket-protocol': 'b' } }, KEY, ['a', 'b']), { protocol: 'b' });
  });
  it('validateServerResponse rejects with 502', () => {
    bad502({ statusCode: 200, headers: good }, [], 'backend_status');
    bad502({ statusCode: 302, headers: good }, [], 'backend_status');
    bad502({ statusCode: 101, headers: { ...good, 'sec-websocket-accept': acceptKey(generateKey()) } }, [], 'backend_bad_accept');
    bad502({ statusCode: 101, headers: { connection: 'Upgrade', 'sec-websocket-accept': acceptKey(KEY) } }, [], 'backend_bad_upgrade');
    bad502({ statusCode: 101, headers: { upgrade: 'websocket', 'sec-websocket-accept': acceptKey(KEY) } }, [], 'backend_bad_connection');
    bad502({ statusCode: 101, headers: { ...good, 'sec-websocket-protocol': 'c' } }, ['a'], 'backend_bad_subprotocol');
    bad502({ statusCode: 101, headers: { ...good, 'sec-websocket-extensions': 'permessage-deflate' } }, [], 'backend_bad_extension');
  });
});
