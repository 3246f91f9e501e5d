/** The tcp and websocket service schemas: defaults, and each bad key refused with its path. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/errors.js';

function issuesOf(service: Record<string, unknown>): string[] {
  try {
    parseConfig({ services: { s: { path: '/s', ...service } } });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues;
  }
  throw new Error('the config was accepted');
}

describe('backend service config', () => {
  it('fills safe defaults for a tcp service', () => {
    const c = parseConfig({ services: { s: { path: '/s', type: 'tcp', backend: 'tcp://127.0.0.1:5900' } } });
    const s = c.services.s;
    assert.equal(s.type, 'tcp');
    if (s.type !== 'tcp') return;
    assert.equal(s.connect_timeout, 10_000);
    assert.equal(s.text, 'reject');
    assert.equal(s.frame_size, 64 * 1024);
    assert.equal(s.tls, undefined);
  });

  it('reads units and a CA list for a websocket service', () => {
    const c = parseConfig({ services: { s: {
      path: '/s', type: 'websocket', backend: 'wss://chat.internal/socket?x=1', connect_timeout: '2s',
      backend_protocols: ['chat.v2'], tls: { ca: 'a.pem', servername: 'chat.internal' },
    } } });
    const s = c.services.s;
    if (s.type !== 'websocket') throw new Error('wrong type');
    assert.equal(s.connect_timeout, 2_000);
    assert.deepEqual(s.tls?.ca, ['a.pem']);
  });

  const bad: Array<[string, Record<string, unknown>, RegExp]> = [
    ['a tcp backend without a port', { type: 'tcp', backend: 'tcp://host' }, /^services\.s\.backend: the URL needs a port/],
    ['an http URL for a tcp service', { type: 'tcp', backend: 'http://host:80' }, /^services\.s\.backend: the scheme must be one of tcp:\/\/, tls:\/\//],
    ['a ws URL for a tcp service', { type: 'tcp', backend: 'ws://host:80' }, /^services\.s\.backend: the scheme/],
    ['a tcp URL for a websocket service', { type: 'websocket', backend: 'tcp://host:1' }, /^services\.s\.backend: the scheme must be one of ws:\/\/, wss:\/\//],
    ['not a URL', { type: 'websocket', backend: 'chat.internal' }, /^services\.s\.backend: not a URL/],
    ['credentials in the URL', { type: 'websocket', backend: 'wss://user:secret@host/' }, /^services\.s\.backend: no credentials/],
    ['a zero connect timeout', { type: 'tcp', backend: 'tcp://h:1', connect_timeout: 0 }, /^services\.s\.connect_timeout: must be more than 0/],
    ['an unknown text policy', { type: 'tcp', backend: 'tcp://h:1', text: 'maybe' }, /^services\.s\.text:/],
    ['a frame size over 16 MiB', { type: 'tcp', backend: 'tcp://h:1', frame_size: '32MiB' }, /^services\.s\.frame_size: between/],
    ['a client cert without its key', { type: 'websocket', backend: 'wss://h/', tls: { cert: 'c.pem' } }, /^services\.s\.tls: cert and key go together/],
    ['a subprotocol that is not a token', { type: 'websocket', backend: 'ws://h/', backend_protocols: ['a b'] }, /^services\.s\.backend_protocols\.0: not a subprotocol token/],
    ['a switch to turn verification off', { type: 'websocket', backend: 'wss://h/', tls: { reject_unauthorized: false } }, /^services\.s\.tls: unknown key "reject_unauthorized"/],
  ];
  for (const [name, service, expected] of bad) {
    it(`refuses ${name}`, () => {
      const issues = issuesOf(service);
      assert.ok(issues.some((i) => expected.test(i)), `issues: ${JSON.stringify(issues)}`);
    });
  }
});
