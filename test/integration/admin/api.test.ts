/**
 * The admin listener through real sockets: health and readiness, each admin
 * API call with the right token, a wrong token and none (401, audited), and
 * the client listener answering 404 on the admin paths.
 */
import { test, after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import WebSocket from 'ws';
import { cheapPasswordHash } from '../../helpers/test-password-hash.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';

const TOKEN = 'test-admin-token-0123456789';
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
let gw: TestGateway;
let adminPort: number;

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string }

function call(method: string, path: string, opts: { token?: string; port?: number; host?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
    if (opts.host !== undefined) headers.host = opts.host;
    const req = request({ host: '127.0.0.1', port: opts.port ?? adminPort, method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function open(path: string, user: string): Promise<WebSocket> {
  const ws = new WebSocket(gw.url(path), { headers: { authorization: basic(user, `${user}-password`) } });
  await once(ws, 'open');
  return ws;
}

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-admin-'));
  const users = join(dir, 'users');
  // (every connection logs in: a cheap hash, or each login costs seconds on a busy machine)
  writeFileSync(users, `alice:${cheapPasswordHash('alice-password')}\nbob:${cheapPasswordHash('bob-password')}\n`);
  const auth = { methods: [{ type: 'basic', realm: 'test', users_file: users }] };
  gw = await startGateway({
    admin: { host: '127.0.0.1', port: 0, token: TOKEN },
    services: {
      chat: { path: '/chat', type: 'echo', allow_missing_origin: true, auth },
      feed: { path: '/feed', type: 'echo', allow_missing_origin: true, auth },
    },
  });
  adminPort = gw.gateway.admin!.address!.port;
});
after(async () => { await gw.stop(); });

describe('health and metrics need no token', () => {
  it('/healthz and /readyz answer 200; /metrics is Prometheus text', { timeout: 10_000 }, async () => {
    assert.equal((await call('GET', '/healthz')).status, 200);
    assert.equal((await call('GET', '/readyz')).status, 200);
    const m = await call('GET', '/metrics');
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.match(m.body, /^# TYPE gatehouse_connections_open gauge$/m);
    assert.match(m.body, /^gatehouse_ready 1$/m);
  });

  it('a Host that is a name other than localhost gets 421 (DNS rebinding)', { timeout: 10_000 }, async () => {
    assert.equal((await call('GET', '/metrics', { host: 'attacker.example:80' })).status, 421);
    assert.equal((await call('GET', '/metrics', { host: `localhost:${adminPort}` })).status, 200);
  });
});

describe('the admin API', () => {
  it('refuses a missing or wrong token with 401, audited', { timeout: 10_000 }, async () => {
    for (const token of [undefined, 'wrong-token-wrong-token', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const r = await call('GET', '/api/connections', { token });
      assert.equal(r.status, 401, `token ${String(token)}`);
      assert.match(String(r.headers['www-authenticate']), /^Bearer /);
    }
    assert.ok(gw.auditReasons().filter((r) => r === 'admin_unauthorized').length >= 4, 'each refusal audited');
    assert.ok(!gw.logText().includes('wrong-token-wrong-token'), 'a presented token never reaches the log');
  });

  it('lists connections with their details, filtered by service or principal', { timeout: 10_000 }, async () => {
    const a = await open('/chat', 'alice');
    const b = await open('/feed', 'bob');
    a.send('hello');
    await once(a, 'message');
    const all = JSON.parse((await call('GET', '/api/connections', { token: TOKEN })).body) as { connections: Array<Record<string, unknown>> };
    assert.equal(all.connections.length, 2);
    const row = all.connections.find((c) => c.principal === 'alice')!;
    assert.equal(row.service, 'chat');
    assert.equal(row.transport, 'websocket');
    assert.equal(row.client, '127.0.0.1');
    assert.equal(row.messages_in, 1);
    assert.equal(row.bytes_in, 5);
    assert.equal(row.bytes_out, 5);
    assert.ok(Math.abs(Date.parse(String(row.since)) - Date.now()) < 60_000, 'since is a recent time');
    const chat = JSON.parse((await call('GET', '/api/connections?service=chat', { token: TOKEN })).body) as { connections: unknown[] };
    assert.equal(chat.connections.length, 1);
    const bob = JSON.parse((await call('GET', '/api/connections?principal=bob', { token: TOKEN })).body) as { connections: Array<{ service: string }> };
    assert.deepEqual(bob.connections.map((c) => c.service), ['feed']);
    a.close();
    b.close();
    await Promise.all([once(a, 'close'), once(b, 'close')]);
  });

  it('DELETE /api/connections/<id> closes that one with 1008, audited; an unknown id is 404', { timeout: 10_000 }, async () => {
    const a = await open('/chat', 'alice');
    const other = await open('/chat', 'bob');
    const list = JSON.parse((await call('GET', '/api/connections?principal=alice', { token: TOKEN })).body) as { connections: Array<{ id: string }> };
    const id = list.connections[0].id;
    const closed = once(a, 'close');
    const r = await call('DELETE', `/api/connections/${encodeURIComponent(id)}`, { token: TOKEN });
    assert.equal(r.status, 200);
    const [code, reason] = await closed;
    assert.equal(code, 1008);
    assert.equal(String(reason), 'closed by administrator');
    assert.equal(other.readyState, WebSocket.OPEN, 'the other connection is untouched');
    assert.ok(gw.logs.some((l) => l.event === 'admin.close_connection' && l.connection === id && l.audit === true), 'audited');
    assert.equal((await call('DELETE', '/api/connections/no-such-id', { token: TOKEN })).status, 404);
    other.close();
    await once(other, 'close');
  });

  it('DELETE /api/principals/<id>/connections closes every connection of that principal', { timeout: 10_000 }, async () => {
    const mine = await Promise.all([open('/chat', 'alice'), open('/feed', 'alice')]);
    const other = await open('/chat', 'bob');
    const closes = mine.map((ws) => once(ws, 'close'));
    const r = await call('DELETE', '/api/principals/alice/connections', { token: TOKEN });
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { closed: string[] }).closed.length, 2);
    for (const [code] of await Promise.all(closes)) assert.equal(code, 1008);
    assert.equal(other.readyState, WebSocket.OPEN);
    assert.ok(gw.logs.some((l) => l.event === 'admin.close_principal' && l.principal === 'alice'), 'audited');
    other.close();
    await once(other, 'close');
  });

  it('POST /api/reload without a configuration source is refused (409) and says why', { timeout: 10_000 }, async () => {
    const r = await call('POST', '/api/reload', { token: TOKEN });
    assert.equal(r.status, 409);
    assert.match(r.body, /built-in configuration/);
  });

  it('a wrong method is 405', { timeout: 10_000 }, async () => {
    assert.equal((await call('GET', '/api/drain', { token: TOKEN })).status, 405);
  });
});

test('the client listener answers 404 on the admin paths', { timeout: 10_000 }, async () => {
  for (const path of ['/metrics', '/healthz', '/readyz', '/api/connections', '/api/drain', '/dashboard.js']) {
    for (const method of ['GET', 'POST', 'DELETE']) {
      const r = await call(method, path, { port: gw.port, token: TOKEN });
      assert.equal(r.status, 404, `${method} ${path} on the client listener`);
      assert.ok(!r.body.includes('gatehouse_'), 'no metrics leak');
    }
  }
});

test('a browser\'s /favicon.ico is a 404 without an audit line', { timeout: 10_000 }, async () => {
  const before = gw.logs.length;
  const r = await call('GET', '/favicon.ico', { port: gw.port });
  assert.equal(r.status, 404);
  const other = await call('GET', '/no-such-path', { port: gw.port });
  assert.equal(other.status, 404);
  const audited = gw.logs.slice(before).filter((l) => l.audit === true);
  assert.equal(audited.length, 1, 'only the other path is audited');
  assert.equal(audited[0].reason, 'no_route');
});
