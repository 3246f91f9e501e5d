/**
 * Table-driven admission decisions through the real pipeline: every rule's
 * status and reason, its audit line and counter, and an admitted "canary"
 * request right after each refusal (nothing else affected).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rejection, type Admission } from '../../../src/admission/types.js';
import { withProtocol } from '../../../src/admission/pipeline.js';
import { harness, logged, request } from './harness.js';

const CONFIG = {
  listen: [{ port: 0 }],
  services: {
    app: {
      path: '/ws', type: 'echo',
      origins: ['https://app.example.com', 'https://*.example.org', 'http://localhost:8080'],
      subprotocols: ['v12.stomp', 'v11.stomp'],
      require_subprotocol: true,
    },
    device: { path: '/device', type: 'echo', allow_missing_origin: true, subprotocols: ['mqtt'] },
    page: { path: '/page', type: 'echo', origins: ['self'] },
  },
};

const GOOD = ['Host', 'gw.example', 'Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', 'v11.stomp, v12.stomp'];

test('each origin and subprotocol rule: status, reason, audit line, counter; the canary still gets in', async () => {
  const h = harness(CONFIG);
  const app = h.service('app');
  const rows: Array<{ name: string; headers: string[]; status?: number; reason?: string; protocol?: string; origin?: string }> = [
    { name: 'allowed', headers: GOOD, protocol: 'v12.stomp', origin: 'https://app.example.com' },
    { name: 'case and default port normalised', headers: ['Origin', 'HTTPS://APP.EXAMPLE.COM:443', 'Sec-WebSocket-Protocol', 'v12.stomp'], protocol: 'v12.stomp', origin: 'https://app.example.com' },
    { name: 'subdomain pattern', headers: ['Origin', 'https://a.b.example.org', 'Sec-WebSocket-Protocol', 'v11.stomp'], protocol: 'v11.stomp', origin: 'https://a.b.example.org' },
    { name: 'client preference ignored, service preference wins', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', 'v11.stomp, chat, v12.stomp'], protocol: 'v12.stomp' },
    { name: 'two Sec-WebSocket-Protocol lines form one list', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', 'chat', 'Sec-WebSocket-Protocol', 'v11.stomp'], protocol: 'v11.stomp' },
    { name: 'missing Origin', headers: ['Sec-WebSocket-Protocol', 'v12.stomp'], status: 403, reason: 'origin_missing' },
    { name: 'cross-site', headers: ['Origin', 'https://evil.example', 'Sec-WebSocket-Protocol', 'v12.stomp'], status: 403, reason: 'origin_not_allowed' },
    { name: 'lookalike suffix', headers: ['Origin', 'https://app.example.com.evil.net'], status: 403, reason: 'origin_not_allowed' },
    { name: 'lookalike prefix', headers: ['Origin', 'https://evilapp.example.com'], status: 403, reason: 'origin_not_allowed' },
    { name: 'sibling subdomain', headers: ['Origin', 'https://evil.example.com'], status: 403, reason: 'origin_not_allowed' },
    { name: 'scheme downgrade', headers: ['Origin', 'http://app.example.com'], status: 403, reason: 'origin_not_allowed' },
    { name: 'other port', headers: ['Origin', 'https://app.example.com:8443'], status: 403, reason: 'origin_not_allowed' },
    { name: 'apex of a pattern', headers: ['Origin', 'https://example.org'], status: 403, reason: 'origin_not_allowed' },
    { name: 'null', headers: ['Origin', 'null'], status: 403, reason: 'origin_null' },
    { name: 'two Origin headers', headers: ['Origin', 'https://app.example.com', 'Origin', 'https://app.example.com'], status: 403, reason: 'origin_malformed' },
    { name: 'origin list form', headers: ['Origin', 'https://app.example.com https://evil.example'], status: 403, reason: 'origin_malformed' },
    { name: 'origin with path', headers: ['Origin', 'https://app.example.com/'], status: 403, reason: 'origin_malformed' },
    { name: 'origin with userinfo', headers: ['Origin', 'https://u@app.example.com'], status: 403, reason: 'origin_malformed' },
    { name: 'raw unicode host', headers: ['Origin', 'https://bücher.example'], status: 403, reason: 'origin_malformed' },
    { name: '4 KiB origin', headers: ['Origin', `https://${'a'.repeat(4096)}.example`], status: 403, reason: 'origin_malformed' },
    { name: 'no subprotocol offered', headers: ['Origin', 'https://app.example.com'], status: 400, reason: 'subprotocol_not_acceptable' },
    { name: 'only unknown offered', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', 'chat, superchat'], status: 400, reason: 'subprotocol_not_acceptable' },
    // Subprotocol values are compared exactly (RFC 6455 §4.1: case-sensitive), never case-folded.
    { name: 'listed one in other case', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', 'V12.STOMP, v11.Stomp'], status: 400, reason: 'subprotocol_not_acceptable' },
    { name: 'duplicates', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', 'v12.stomp, v12.stomp'], status: 400, reason: 'duplicate_subprotocol' },
    { name: 'parameters', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', 'v12.stomp;v=1'], status: 400, reason: 'invalid_subprotocol' },
    { name: 'quoted', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', '"v12.stomp"'], status: 400, reason: 'invalid_subprotocol' },
    { name: 'empty element', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', 'a,,v12.stomp'], status: 400, reason: 'invalid_subprotocol' },
    { name: 'empty value', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', ''], status: 400, reason: 'invalid_subprotocol' },
    { name: '17 tokens', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', Array.from({ length: 17 }, (_, i) => `p${i}`).join(',')], status: 400, reason: 'subprotocol_limit' },
    { name: 'ReDoS shape, 16 KiB of spaces', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', `b${' '.repeat(16 * 1024)}x`], status: 400, reason: 'subprotocol_limit' },
    { name: '1,000 tokens', headers: ['Origin', 'https://app.example.com', 'Sec-WebSocket-Protocol', Array.from({ length: 1000 }, (_, i) => `t${i}`).join(',')], status: 400, reason: 'subprotocol_limit' },
  ];
  for (const row of rows) {
    const before = row.reason ? h.metrics.get('gatehouse_rejections_total', { reason: row.reason }) : 0;
    const out = await h.pipeline.admit(request(row.headers), app);
    if (row.status) {
      assert.ok(out instanceof Rejection, `${row.name}: expected a rejection`);
      assert.equal(out.status, row.status, row.name);
      assert.equal(out.reason, row.reason, row.name);
      assert.equal(h.metrics.get('gatehouse_rejections_total', { reason: row.reason! }), before + 1, `${row.name}: counter`);
    } else {
      assert.ok(!(out instanceof Rejection), `${row.name}: ${out instanceof Rejection ? out.reason : ''}`);
      if (row.protocol !== undefined) assert.equal(out.protocol, row.protocol, row.name);
      if (row.origin !== undefined) assert.equal(out.origin, row.origin, row.name);
      out.release();
    }
    // Canary: a good request is admitted right after.
    const canary = await h.pipeline.admit(request(GOOD, '198.51.100.1'), app);
    assert.ok(!(canary instanceof Rejection), `canary after ${row.name}`);
    canary.release();
  }
  const reasons = rows.flatMap((row) => (row.reason ? [row.reason] : []));
  const audited = (lines: Array<Record<string, unknown>>): unknown[] => lines.filter((l) => l.audit === true).map((l) => l.reason);
  await logged(h, (lines) => reasons.every((r) => audited(lines).includes(r)), `audit line for each of ${reasons.join(', ')}`);
  const line = h.lines.find((l) => l.reason === 'origin_not_allowed');
  assert.equal(line?.service, 'app');
  assert.equal(line?.client, '192.0.2.10');
  assert.equal(line?.origin, 'https://evil.example');
});

test('allow_missing_origin admits clients without Origin; subprotocol optional when not required', async () => {
  const h = harness(CONFIG);
  const device = h.service('device');
  const a = await h.pipeline.admit(request([]), device);
  assert.ok(!(a instanceof Rejection));
  assert.equal(a.origin, null);
  assert.equal(a.protocol, '');
  const b = await h.pipeline.admit(request(['Sec-WebSocket-Protocol', 'chat, mqtt']), device);
  assert.ok(!(b instanceof Rejection));
  assert.equal(b.protocol, 'mqtt');
  assert.deepEqual(b.offeredProtocols, ['chat', 'mqtt']);
  // A present Origin is still checked (and `null` still refused).
  const c = await h.pipeline.admit(request(['Origin', 'null']), device);
  assert.ok(c instanceof Rejection && c.reason === 'origin_null');
  const d = await h.pipeline.admit(request(['Origin', 'https://evil.example']), device);
  assert.ok(d instanceof Rejection && d.reason === 'origin_not_allowed');
});

test('handshake rate: 429 with Retry-After after the burst, per address', async () => {
  const h = harness({ ...CONFIG, limits: { handshake_rate: 1, handshake_burst: 5 } });
  const device = h.service('device');
  for (let i = 0; i < 5; i++) {
    const a = await h.pipeline.admit(request([], '192.0.2.1'), device);
    assert.ok(!(a instanceof Rejection), `handshake ${i}`);
    a.release();
  }
  const r = await h.pipeline.admit(request([], '192.0.2.1'), device);
  assert.ok(r instanceof Rejection);
  assert.equal(r.status, 429);
  assert.equal(r.reason, 'handshake_rate');
  assert.equal(r.headers['Retry-After'], '1');
  // Same /64 counts as one client; other addresses are not affected.
  const v6a = await h.pipeline.admit(request([], '2001:db8::1'), device);
  assert.ok(!(v6a instanceof Rejection));
  const canary = await h.pipeline.admit(request([], '198.51.100.7'), device);
  assert.ok(!(canary instanceof Rejection));
  assert.equal(h.metrics.get('gatehouse_rejections_total', { reason: 'handshake_rate' }), 1);
});

test('connection limits per address (429), per service and total (503), released on close and on later refusal', async () => {
  const h = harness({
    ...CONFIG,
    limits: { connections_per_address: 2, connections_total: 4 },
    services: { ...CONFIG.services, device: { ...CONFIG.services.device, max_connections: 3 } },
  });
  const device = h.service('device');
  const app = h.service('app');
  const open: Admission[] = [];
  const admit = async (svc = device, addr = '192.0.2.1', headers: string[] = []) => h.pipeline.admit(request(headers, addr), svc);
  for (let i = 0; i < 2; i++) {
    const a = await admit();
    assert.ok(!(a instanceof Rejection));
    open.push(a);
  }
  const perAddress = await admit();
  assert.ok(perAddress instanceof Rejection);
  assert.deepEqual([perAddress.status, perAddress.reason], [429, 'too_many_connections']);
  assert.ok(perAddress.headers['Retry-After']);
  // IPv6: the whole /64 is one client.
  open.push(await admit(device, '2001:db8:0:1::1') as Admission);
  const full = await admit(device, '2001:db8:0:1::2');
  assert.ok(full instanceof Rejection);
  assert.deepEqual([full.status, full.reason], [503, 'service_full']);
  // A refusal by a later check (origin) gives the reserved slot back.
  for (let i = 0; i < 3; i++) {
    const r = await admit(app, '198.51.100.9', ['Origin', 'https://evil.example']);
    assert.ok(r instanceof Rejection && r.reason === 'origin_not_allowed');
  }
  const a4 = await admit(app, '198.51.100.9', GOOD);
  assert.ok(!(a4 instanceof Rejection));
  open.push(a4);
  const total = await admit(app, '198.51.100.10', GOOD);
  assert.ok(total instanceof Rejection);
  assert.deepEqual([total.status, total.reason], [503, 'gateway_full']);
  assert.equal(h.metrics.get('gatehouse_connections_open', { service: 'device' }), 3);
  // Closing releases (idempotently).
  open[0].release();
  open[0].release();
  const again = await admit();
  assert.ok(!(again instanceof Rejection));
  for (const a of [...open, again]) a.release();
  assert.equal(h.metrics.get('gatehouse_connections_open', { service: 'device' }), 0);
  assert.equal(h.metrics.get('gatehouse_connections_open', { service: 'app' }), 0);
});

test('an admission copied with another subprotocol keeps its id, client, offer and service, and shares one release', async () => {
  const h = harness({ ...CONFIG, limits: { connections_per_address: 1 } });
  const device = h.service('device');
  const a = await h.pipeline.admit(request(['Sec-WebSocket-Protocol', 'mqtt'], '192.0.2.50'), device);
  assert.ok(!(a instanceof Rejection));
  const copy = withProtocol(a, 'chosen.by.service');
  assert.equal(copy.protocol, 'chosen.by.service');
  assert.equal(a.protocol, 'mqtt');
  assert.equal(copy.id, a.id);
  assert.match(a.id, /^[0-9a-f]{8}-[0-9a-z]+$/);
  assert.deepEqual(copy.client, { address: '192.0.2.50', port: a.client.port });
  assert.deepEqual(copy.offeredProtocols, ['mqtt']);
  assert.equal(copy.service, a.service);
  assert.equal(h.metrics.get('gatehouse_connections_open', { service: 'device' }), 1);
  // The address's only slot is taken until one of the two is released; releasing the other too releases nothing more.
  assert.ok(await h.pipeline.admit(request([], '192.0.2.50'), device) instanceof Rejection);
  copy.release();
  assert.equal(h.metrics.get('gatehouse_connections_open', { service: 'device' }), 0);
  a.release();
  assert.equal(h.metrics.get('gatehouse_connections_open', { service: 'device' }), 0);
  const next = await h.pipeline.admit(request([], '192.0.2.50'), device);
  assert.ok(!(next instanceof Rejection));
  assert.notEqual(next.id, a.id);
  next.release();
});

test('self admits exactly the gateway\'s own origin', async () => {
  const h = harness(CONFIG);
  const page = h.service('page');
  const ok = await h.pipeline.admit(request(['Host', 'gw.example:8080', 'Origin', 'http://GW.example:8080']), page);
  assert.ok(!(ok instanceof Rejection));
  assert.equal(ok.origin, 'http://gw.example:8080');
  for (const origin of ['https://gw.example:8080', 'http://gw.example', 'http://evil.example:8080']) {
    const r = await h.pipeline.admit(request(['Host', 'gw.example:8080', 'Origin', origin]), page);
    assert.ok(r instanceof Rejection && r.reason === 'origin_not_allowed', origin);
  }
  const noHost = await h.pipeline.admit(request(['Origin', 'http://gw.example:8080']), page);
  assert.ok(noHost instanceof Rejection);
});

test('the checks run in the documented order', () => {
  const h = harness(CONFIG);
  assert.deepEqual(h.pipeline.checksOf('app'), ['handshake-rate', 'connection-limit', 'origin', 'subprotocol-offer', 'subprotocol']);
});
