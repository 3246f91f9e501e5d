import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxyHeader } from '../../../src/front/proxy-protocol.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

function v2(verCmd: number, famProto: number, payload: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(payload.length);
  return Buffer.concat([SIG, Buffer.from([verCmd, famProto]), len, payload]);
}

test('PROXY v1', () => {
  const ok = parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.9 192.0.2.1 56324 443\r\nGET / HTTP/1.1\r\n'));
  assert.equal(ok.status, 'ok');
  if (ok.status === 'ok') {
    assert.deepEqual(ok.header, { version: 1, proxied: true, sourceAddress: '203.0.113.9', sourcePort: 56324, destinationAddress: '192.0.2.1', destinationPort: 443 });
    assert.equal(ok.length, 'PROXY TCP4 203.0.113.9 192.0.2.1 56324 443\r\n'.length);
  }
  const six = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'));
  assert.equal(six.status === 'ok' && six.header.sourceAddress, '2001:db8::1');
  const unknown = parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'));
  assert.equal(unknown.status === 'ok' && unknown.header.proxied, false);
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4')).status, 'incomplete');
  assert.equal(parseProxyHeader(Buffer.from('PRO')).status, 'incomplete');
  const bad = [
    'GET / HTTP/1.1\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n',
    'PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n',
    'PROXY TCP4 1.2.3.999 5.6.7.8 1 2\r\n',
    'PROXY TCP4 ::1 5.6.7.8 1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
    'PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n',
    'PROXY ' + 'x'.repeat(200),
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ' + ' '.repeat(100) + '\r\n',
  ];
  for (const b of bad) assert.equal(parseProxyHeader(Buffer.from(b)).status, 'invalid', JSON.stringify(b));
});

test('PROXY v2', () => {
  const v4 = Buffer.from([203, 0, 113, 9, 192, 0, 2, 1, 0xdc, 0x04, 0x01, 0xbb]);
  const ok = parseProxyHeader(Buffer.concat([v2(0x21, 0x11, v4), Buffer.from('rest')]));
  assert.equal(ok.status, 'ok');
  if (ok.status === 'ok') {
    assert.deepEqual(ok.header, { version: 2, proxied: true, sourceAddress: '203.0.113.9', sourcePort: 0xdc04, destinationAddress: '192.0.2.1', destinationPort: 443 });
    assert.equal(ok.length, 16 + 12);
  }
  const v6payload = Buffer.alloc(36);
  v6payload.writeUInt16BE(0x2001, 0); v6payload.writeUInt16BE(0xdb8, 2); v6payload.writeUInt16BE(1, 14);
  v6payload.writeUInt16BE(8080, 32);
  const six = parseProxyHeader(v2(0x21, 0x21, v6payload));
  assert.equal(six.status === 'ok' && six.header.sourceAddress, '2001:db8:0:0:0:0:0:1');
  // TLVs after the addresses are skipped.
  const withTlv = parseProxyHeader(v2(0x21, 0x11, Buffer.concat([v4, Buffer.from([0x04, 0x00, 0x01, 0x00])])));
  assert.equal(withTlv.status === 'ok' && withTlv.length, 16 + 16);
  const local = parseProxyHeader(v2(0x20, 0x00, Buffer.alloc(0)));
  assert.equal(local.status === 'ok' && local.header.proxied, false);
  assert.equal(parseProxyHeader(v2(0x21, 0x11, v4).subarray(0, 20)).status, 'incomplete');
  assert.equal(parseProxyHeader(SIG.subarray(0, 5)).status, 'incomplete');
  assert.equal(parseProxyHeader(v2(0x31, 0x11, v4)).status, 'invalid'); // version 3
  assert.equal(parseProxyHeader(v2(0x22, 0x11, v4)).status, 'invalid'); // command 2
  assert.equal(parseProxyHeader(v2(0x21, 0x11, v4.subarray(0, 8))).status, 'invalid'); // short IPv4 block
  assert.equal(parseProxyHeader(v2(0x21, 0x41, v4)).status, 'invalid'); // family 4
  assert.equal(parseProxyHeader(v2(0x21, 0x11, Buffer.alloc(5000))).status, 'invalid'); // too long
  assert.equal(parseProxyHeader(Buffer.from('0d0a0d0a000d0a515549540b', 'hex')).status, 'invalid');
});
