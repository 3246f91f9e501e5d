import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';
import { harness } from './harness.js';

function issues(raw: unknown): string[] {
  try {
    parseConfig(raw, {});
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues;
  }
  return [];
}

const svc = (extra: Record<string, unknown>) => ({ listen: [{ port: 0 }], services: { s: { path: '/s', type: 'echo', ...extra } } });

test('origin allow-lists are validated with the path of the bad entry', () => {
  assert.match(issues(svc({ origins: ['https://ok.example', 'null'] })).join('\n'), /services\.s\.origins\.1: the opaque origin "null" cannot be allowed/);
  assert.match(issues(svc({ origins: ['https://ok.example/'] })).join('\n'), /services\.s\.origins\.0: not an origin/);
  assert.match(issues(svc({ origins: ['https://*.com'] })).join('\n'), /origins\.0: a wildcard needs at least two labels/);
  assert.match(issues(svc({ origins: ['ws://x.example'] })).join('\n'), /unsupported scheme/);
  const c = parseConfig(svc({ origins: ['HTTPS://Bücher.Example:443', 'https://*.Example.com'] }), {});
  assert.deepEqual(c.services.s.origins, ['https://xn--bcher-kva.example', 'https://*.example.com']);
});

test('subprotocols, trusted proxies, limits and listeners are validated', () => {
  assert.match(issues(svc({ subprotocols: ['v12.stomp', 'bad token'] })).join('\n'), /services\.s\.subprotocols\.1: not a valid subprotocol token/);
  assert.match(issues({ ...svc({}), trusted_proxies: ['10.0.0.0/8', '10.0.0.0/40'] }).join('\n'), /trusted_proxies\.1/);
  assert.match(issues({ ...svc({}), limits: { send_buffer: '1 furlong' } }).join('\n'), /limits\.send_buffer/);
  assert.match(issues({ listen: [{ port: 0, hsts: true }] }).join('\n'), /listen\.0\.hsts: hsts needs a tls listener/);
  assert.match(issues({ listen: [{ port: 0, tls: { cert: 'c', key: 'k', client_certificate: 'required' } }] }).join('\n'), /listen\.0\.tls\.ca: client_certificate needs a ca file/);
  assert.match(issues({ listen: [{ port: 0, tls: { cert: 'c', key: 'k', min_version: 'TLSv1.1' } }] }).join('\n'), /listen\.0\.tls\.min_version/);
  const c = parseConfig({ listen: [{ port: 0, tls: { cert: 'c', key: 'k' }, hsts: true }, { port: 0, redirect_http: true }] }, {});
  assert.equal(c.listen[0].tls?.min_version, 'TLSv1.2');
  assert.equal(c.listen[0].tls?.handshake_timeout, 10_000);
  assert.equal(c.listen[0].tls?.client_certificate, 'none');
  assert.deepEqual(c.listen[0].hsts, { max_age: 31_536_000, include_subdomains: false, preload: false });
  assert.deepEqual(c.listen[1].redirect_http, { port: 443 });
  assert.deepEqual(c.trusted_proxies, []);
  assert.equal(c.limits.handshake_rate, 20);
  assert.equal(c.limits.connections_per_address, 256);
});

test('require_subprotocol without subprotocols is refused when the pipeline is built', () => {
  assert.throws(() => harness(svc({ require_subprotocol: true })), (err: unknown) =>
    err instanceof ConfigError && /services\.s\.require_subprotocol/.test(err.issues.join('\n')));
});
