import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildFrame, closePayload, RawClient } from '../../helpers/raw-client.js';

describe('raw client frame builder', () => {
  it('encodes lengths in the requested form', () => {
    assert.equal(buildFrame({ opcode: 1, payload: 'abc', mask: false }).length, 2 + 3);
    assert.equal(buildFrame({ opcode: 1, payload: 'abc', mask: false, lengthEncoding: '16' }).length, 4 + 3);
    assert.equal(buildFrame({ opcode: 1, payload: 'abc', mask: false, lengthEncoding: '64' }).length, 10 + 3);
    assert.equal(buildFrame({ opcode: 1, payload: 'abc' }).length, 2 + 4 + 3);
    const f = buildFrame({ opcode: 9, fin: false, rsv: 5, mask: Buffer.from([1, 2, 3, 4]), payload: Buffer.from([1, 2, 3, 4, 5]) });
    assert.deepEqual([...f], [0x59, 0x85, 1, 2, 3, 4, 0, 0, 0, 0, 4]);
    const lie = buildFrame({ opcode: 2, mask: false, declaredLength: 1000 });
    assert.deepEqual([...lie], [0x82, 126, 0x03, 0xe8]);
    const msb = buildFrame({ opcode: 2, mask: false, lengthHigh: 0x80000000 });
    assert.deepEqual([...msb.subarray(0, 6)], [0x82, 127, 0x80, 0, 0, 0]);
  });
  it('builds close payloads', () => {
    assert.deepEqual([...closePayload(1000, 'a')], [0x03, 0xe8, 0x61]);
    assert.equal(closePayload().length, 0);
  });
  it('builds handshake requests with overrides and omissions', () => {
    const r = RawClient.handshakeRequest({ path: '/x', omit: ['sec-websocket-version'], headers: { Origin: 'https://a', Host: ['a', 'b'] } });
    assert.ok(r.startsWith('GET /x HTTP/1.1\r\n'));
    assert.ok(!/Sec-WebSocket-Version/.test(r));
    assert.match(r, /Host: a\r\nHost: b\r\n/);
    assert.ok(r.endsWith('\r\n\r\n'));
  });
});
