import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OriginAllowList, compileOriginRule, parseOrigin } from '../../../src/http/origin.js';

test('parseOrigin serialises per RFC 6454', () => {
  const table: Array<[string, string | undefined]> = [
    ['https://app.example.com', 'https://app.example.com'],
    ['HTTPS://APP.EXAMPLE.COM', 'https://app.example.com'],
    ['https://app.example.com:443', 'https://app.example.com'],
    ['http://app.example.com:80', 'http://app.example.com'],
    ['https://app.example.com:8443', 'https://app.example.com:8443'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['http://[::1]:8080', 'http://[::1]:8080'],
    ['https://xn--bcher-kva.example', 'https://xn--bcher-kva.example'],
    // not exactly one well-formed origin
    ['null', undefined],
    ['', undefined],
    ['https://app.example.com/', undefined],
    ['https://app.example.com/path', undefined],
    ['https://user@app.example.com', undefined],
    ['https://user:pw@app.example.com', undefined],
    ['https://a.example https://b.example', undefined],
    ['https://app.example.com?x', undefined],
    ['https://app.example.com#x', undefined],
    ['https://bücher.example', undefined],
    ['file://x', undefined],
    ['ftp://app.example.com', undefined],
    ['https://', undefined],
    ['https://app..example.com', undefined],
    ['https://app.example.com:99999', undefined],
    ['https://' + 'a'.repeat(4096) + '.com', undefined],
    ['https://app.example.com, https://evil.example', undefined],
  ];
  for (const [input, expected] of table) {
    assert.equal(parseOrigin(input)?.serialized, expected, input);
  }
});

test('allow-list: exact origins and whole-label subdomain patterns; lookalikes refused', () => {
  const list = new OriginAllowList(['https://app.example.com', 'https://*.example.org', 'http://localhost:8080', 'https://Bücher.example']);
  const table: Array<[string, boolean]> = [
    ['https://app.example.com', true],
    ['HTTPS://APP.EXAMPLE.COM', true],
    ['https://app.example.com:443', true],
    ['https://xn--bcher-kva.example', true],
    ['http://localhost:8080', true],
    ['https://a.example.org', true],
    ['https://a.b.example.org', true],
    // refused
    ['https://app.example.com.evil.net', false],
    ['https://evilapp.example.com', false],
    ['https://app-example.com', false],
    ['https://x.app.example.com', false],
    ['https://evil.example.com', false],
    ['http://app.example.com', false],
    ['https://app.example.com:8443', false],
    ['http://localhost:8081', false],
    ['http://localhost', false],
    ['https://example.org', false],
    ['https://evilexample.org', false],
    ['http://a.example.org', false],
    ['https://a.example.org:8443', false],
    ['https://example.org.evil.net', false],
  ];
  for (const [input, allowed] of table) {
    const parsed = parseOrigin(input);
    assert.ok(parsed, input);
    assert.equal(list.allows(parsed), allowed, input);
  }
});

test('hasExact: only a value that is one listed origin, exactly as serialised, skips the parse', () => {
  const list = new OriginAllowList(['https://app.example.com', 'https://*.example.org', 'http://localhost:8080', 'https://Bücher.example']);
  for (const hit of ['https://app.example.com', 'http://localhost:8080', 'https://xn--bcher-kva.example']) {
    assert.equal(list.hasExact(hit), true, hit);
    // Agrees with the full path: it parses to itself and is allowed.
    const parsed = parseOrigin(hit);
    assert.equal(parsed?.serialized, hit, hit);
    assert.equal(list.allows(parsed!), true, hit);
  }
  // Allowed after parsing, but not verbatim: these still take the parse.
  for (const miss of ['HTTPS://APP.EXAMPLE.COM', 'https://app.example.com:443', 'https://a.example.org', 'https://Bücher.example',
    'https://app.example.com.evil.net', 'null', '', ' https://app.example.com']) {
    assert.equal(list.hasExact(miss), false, miss);
  }
});

test('compileOriginRule refuses what cannot be allowed', () => {
  for (const bad of ['null', 'NULL', 'https://app.example.com/', 'app.example.com', 'ftp://x.example', 'https://*', 'https://*.com',
    'https://a.*.example.com', 'https://*example.com', 'https://*.127.0.0.1', 'https://x.example/path']) {
    assert.throws(() => compileOriginRule(bad), Error, bad);
  }
  assert.deepEqual(compileOriginRule('https://*.Example.com:8443'), {
    kind: 'subdomains', scheme: 'https', suffix: '.example.com', port: '8443', pattern: 'https://*.example.com:8443',
  });
  assert.deepEqual(compileOriginRule('https://münchen.example:443'), { kind: 'exact', origin: 'https://xn--mnchen-3ya.example' });
});

test('self: the gateway\'s own origin (connection scheme + Host)', async () => {
  const { selfOrigin } = await import('../../../src/http/origin.js');
  assert.equal(selfOrigin(false, '127.0.0.1:8080'), 'http://127.0.0.1:8080');
  assert.equal(selfOrigin(true, 'GW.Example:443'), 'https://gw.example');
  assert.equal(selfOrigin(false, undefined), undefined);
  assert.equal(selfOrigin(false, 'a b'), undefined);
  assert.deepEqual(compileOriginRule('self'), { kind: 'self' });
  assert.equal(new OriginAllowList(['self']).self, true);
});
