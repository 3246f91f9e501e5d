import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CidrSet, addressKey, parseCidr } from '../../../src/http/cidr.js';
import { resolveClientAddress, type ClientAddress } from '../../../src/front/forwarded.js';

test('CIDR sets match v4, v6 and v4-mapped peers', () => {
  const set = new CidrSet(['10.0.0.0/8', '192.0.2.7', 'fd00::/8']);
  assert.equal(set.has('10.1.2.3'), true);
  assert.equal(set.has('::ffff:10.1.2.3'), true);
  assert.equal(set.has('11.0.0.1'), false);
  assert.equal(set.has('192.0.2.7'), true);
  assert.equal(set.has('192.0.2.8'), false);
  assert.equal(set.has('fd12::1'), true);
  assert.equal(set.has('fe80::1'), false);
  assert.equal(set.has('not-an-ip'), false);
  assert.equal(new CidrSet([]).has('10.0.0.1'), false);
  for (const bad of ['10.0.0.0/33', 'x', '10.0.0.0/', 'fd00::/129', '10.0.0.0/8/8']) assert.equal(parseCidr(bad), undefined, bad);
  assert.throws(() => new CidrSet(['nope']));
});

test('per-address keys: IPv4 as is, mapped IPv4 unwrapped, IPv6 by /64', () => {
  assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
  assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(addressKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:db8:1:2::9'), '2001:db8:1:2::/64');
  assert.equal(addressKey('2001:0db8:0001:0002::1'), '2001:db8:1:2::/64');
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
});

test('forwarding headers are believed only from trusted proxies', () => {
  const peer = (address: string): ClientAddress => ({ address, port: 5555, source: 'socket' });
  const none = new CidrSet([]);
  const trusted = new CidrSet(['10.0.0.0/8']);
  const xff = { 'x-forwarded-for': '203.0.113.9' };
  // Never trusted by default.
  assert.equal(resolveClientAddress(peer('10.0.0.1'), xff, none).address, '10.0.0.1');
  // Untrusted peer: ignored.
  assert.equal(resolveClientAddress(peer('198.51.100.1'), xff, trusted).address, '198.51.100.1');
  // Trusted peer: the rightmost untrusted hop is the client (spoofed left entries are ignored).
  const r = resolveClientAddress(peer('10.0.0.1'), { 'x-forwarded-for': '127.0.0.1, 203.0.113.9, 10.0.0.2' }, trusted);
  assert.deepEqual([r.address, r.source], ['203.0.113.9', 'x-forwarded-for']);
  // Only the configured header is read: a proxy appending to X-Forwarded-For passes a client's own Forwarded through.
  const both = { forwarded: 'for=192.0.2.60;proto=http, for="[2001:db8::1]:4711"', 'x-forwarded-for': '1.1.1.1' };
  assert.equal(resolveClientAddress(peer('10.0.0.1'), both, trusted).address, '1.1.1.1', 'Forwarded is ignored by default');
  assert.equal(resolveClientAddress(peer('10.0.0.1'), { forwarded: 'for=192.0.2.60' }, trusted).address, '10.0.0.1',
    'a Forwarded header alone does not move the client by default');
  // forwarded_header: forwarded (RFC 7239), with quoted IPv6 and ports; X-Forwarded-For then ignored.
  const f = resolveClientAddress(peer('10.0.0.1'), both, trusted, 'forwarded');
  assert.deepEqual([f.address, f.port, f.source], ['2001:db8::1', 4711, 'forwarded']);
  assert.equal(resolveClientAddress(peer('10.0.0.1'), { 'x-forwarded-for': '1.1.1.1' }, trusted, 'forwarded').address, '10.0.0.1',
    'X-Forwarded-For is ignored when the proxy writes Forwarded');
  // Garbage in the chain: stop at the nearest trusted hop.
  assert.equal(resolveClientAddress(peer('10.0.0.1'), { 'x-forwarded-for': '203.0.113.9, garbage' }, trusted).address, '10.0.0.1');
  assert.equal(resolveClientAddress(peer('10.0.0.1'), { forwarded: 'for=unknown' }, trusted, 'forwarded').address, '10.0.0.1');
  // All hops trusted: the leftmost.
  assert.equal(resolveClientAddress(peer('10.0.0.1'), { 'x-forwarded-for': '10.9.9.9, 10.0.0.2' }, trusted).address, '10.9.9.9');
  // No header: the peer.
  assert.equal(resolveClientAddress(peer('10.0.0.1'), {}, trusted).address, '10.0.0.1');
});
