import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Admission } from '../../../src/admission/types.js';
import { recheckOf } from '../../../src/auth/recheck.js';
import { startLoginApp, type LoginApp } from '../../helpers/login-app.js';
import { isRejection, makeHarness, type Harness } from './harness.js';

describe('forward authentication against a real login app', () => {
  let app: LoginApp;
  let h: Harness;
  let silent: http.Server;
  const sockets = new Set<import('node:net').Socket>();

  before(async () => {
    app = await startLoginApp({ alice: { password: 'alice-pw', roles: ['staff', 'chat'] }, bob: { password: 'bob-pw' } });
    // An auth endpoint that accepts the connection and never answers.
    silent = http.createServer(() => {});
    silent.on('connection', (s) => { sockets.add(s); });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as AddressInfo).port;
    h = makeHarness({
      auth: { failures: { per_address: 1000 } },
      services: {
        app: { path: '/app', type: 'echo', auth: { methods: [{ type: 'forward', url: app.authUrl, cookie: 'session', cache: '1m', revalidate: '30s' }] } },
        nocache: { path: '/nc', type: 'echo', auth: { methods: [{ type: 'forward', url: app.authUrl, cache: 0 }] } },
        staff: { path: '/staff', type: 'echo', auth: { methods: [{ type: 'forward', url: app.authUrl, cache: 0 }] }, authorize: { roles: ['staff'] } },
        down: { path: '/down', type: 'echo', auth: { methods: [{ type: 'forward', url: 'http://127.0.0.1:1/auth' }] } },
        slow: { path: '/slow', type: 'echo', auth: { methods: [{ type: 'forward', url: `http://127.0.0.1:${silentPort}/auth`, timeout: '300ms' }] } },
      },
    });
  });
  after(async () => {
    await app.stop();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  });

  it('admits a logged-in session with user id and roles from the app', async () => {
    const cookie = await app.login('alice', 'alice-pw');
    const a = await h.admit('app', { headers: { cookie: `theme=dark; ${cookie}` } }) as Admission;
    assert.ok(!isRejection(a), JSON.stringify(a));
    assert.equal(a.principal?.id, 'alice');
    assert.deepEqual(a.principal?.roles, ['staff', 'chat']);
    assert.equal(a.principal?.method, 'forward');
    assert.equal(recheckOf(a.principal)?.interval, 30_000, 'revalidation attached');
  });

  it('caches answers briefly, keyed by the credentials', async () => {
    const cookie = await app.login('alice', 'alice-pw');
    const before = app.authCalls;
    for (let i = 0; i < 5; i++) assert.ok(!isRejection(await h.admit('app', { headers: { cookie } })), `admit ${i}`);
    assert.equal(app.authCalls - before, 1, 'one call to the auth endpoint for five handshakes');
    const other = await app.login('bob', 'bob-pw');
    const a = await h.admit('app', { headers: { cookie: other } }) as Admission;
    assert.equal(a.principal?.id, 'bob', 'different credentials, different cache entry');
  });

  it('passes a 401 through with the app\'s challenge', async () => {
    const r = await h.admit('app', { headers: { cookie: 'session=forged-session-id' } });
    assert.ok(isRejection(r), 'expected a rejection');
    assert.equal(r.status, 401);
    assert.equal(r.reason, 'forward_denied');
    assert.equal(r.headers['WWW-Authenticate'], 'Cookie realm="app"');
    assert.ok(!h.logText().includes('forged-session-id'), 'cookie leaked into the log');
  });

  it('skips to "no credentials" when the configured cookie is absent', async () => {
    const r = await h.admit('app', { headers: { cookie: 'theme=dark' } });
    assert.ok(isRejection(r), 'expected a rejection');
    assert.equal(r.reason, 'auth_missing');
  });

  it('refuses two different session cookies', async () => {
    const c1 = await app.login('alice', 'alice-pw');
    const c2 = await app.login('bob', 'bob-pw');
    const r = await h.admit('app', { headers: { cookie: [c1, c2] } });
    assert.ok(isRejection(r), 'expected a rejection');
    assert.equal(r.status, 401);
    assert.equal(r.reason, 'cookie_ambiguous');
  });

  it('authorizes by the roles the app reports', async () => {
    const bob = await app.login('bob', 'bob-pw');
    const r = await h.admit('staff', { headers: { cookie: bob } });
    assert.ok(isRejection(r), 'bob is not staff');
    assert.equal(r.status, 403);
    const alice = await app.login('alice', 'alice-pw');
    assert.ok(!isRejection(await h.admit('staff', { headers: { cookie: alice } })), 'alice is staff');
  });

  it('passes a 403 through', async () => {
    const cookie = await app.login('alice', 'alice-pw');
    app.setAuthBehaviour({ status: 403 });
    try {
      const r = await h.admit('nocache', { headers: { cookie } });
      assert.ok(isRejection(r), 'expected a rejection');
      assert.equal(r.status, 403);
      assert.equal(r.reason, 'forward_forbidden');
    } finally {
      app.setAuthBehaviour({});
    }
  });

  it('answers 503 when the app errs, is unreachable or too slow', async () => {
    const cookie = await app.login('alice', 'alice-pw');
    app.setAuthBehaviour({ status: 500 });
    try {
      const r = await h.admit('nocache', { headers: { cookie } });
      assert.ok(isRejection(r), 'expected a rejection');
      assert.equal(r.status, 503);
      assert.equal(r.reason, 'forward_bad_status');
    } finally {
      app.setAuthBehaviour({});
    }
    const down = await h.admit('down', { headers: { cookie } });
    assert.ok(isRejection(down) && down.status === 503 && down.reason === 'forward_unreachable', JSON.stringify(down));
    const slow = await h.admit('slow', { headers: { cookie } });
    assert.ok(isRejection(slow) && slow.status === 503 && slow.reason === 'forward_timeout', JSON.stringify(slow));
  });

  it('re-checks a session and sees its revocation', async () => {
    const cookie = await app.login('bob', 'bob-pw');
    const a = await h.admit('app', { headers: { cookie } }) as Admission;
    assert.ok(!isRejection(a), 'admitted');
    const recheck = recheckOf(a.principal)!;
    assert.equal(await recheck.recheck(), 'valid');
    app.revoke('bob');
    assert.equal(await recheck.recheck(), 'invalid');
    // The re-check refreshed the cache: a new handshake with the revoked cookie is refused at once.
    const r = await h.admit('app', { headers: { cookie } });
    assert.ok(isRejection(r) && r.status === 401, 'revoked session refused');
  });
});
