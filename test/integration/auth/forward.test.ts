/**
 * Cookie sessions of a real web app (the login app) through the whole
 * gateway: the `forward` method, cross-site WebSocket hijacking refused by
 * origin, and a revoked session closing the live connection.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { startLoginApp, type LoginApp } from '../../helpers/login-app.js';
import { closed, open, refused, roundTrip } from './common.js';

let gw: TestGateway;
let app: LoginApp;

before(async () => {
  app = await startLoginApp({ victim: { password: 'victim-pw', roles: ['chat'] }, bob: { password: 'bob-pw', roles: ['chat'] } });
  gw = await startGateway({
    services: {
      chat: {
        path: '/chat', type: 'echo', origins: [app.origin],
        auth: { methods: [{ type: 'forward', url: app.authUrl, cookie: 'session', cache: '200ms', revalidate: '300ms' }] },
      },
    },
  });
});
after(async () => { await gw.stop(); await app.stop(); });

describe('forward (cookie session) through the gateway', () => {
  it('cross-site WebSocket hijacking: the victim\'s cookie from a foreign origin → 403, from the app\'s origin → 101', async () => {
    const cookie = await app.login('victim', 'victim-pw');
    const callsBefore = app.authCalls;
    const evil = await refused(gw.url('/chat'), { headers: { cookie, origin: 'https://evil.example' } });
    assert.equal(evil.status, 403);
    assert.equal(app.authCalls, callsBefore, 'no auth call before the origin check passed');
    assert.ok(gw.auditReasons().some((r) => r.startsWith('origin')), `origin audit line in ${gw.auditReasons().join(',')}`);
    const noOrigin = await refused(gw.url('/chat'), { headers: { cookie } });
    assert.equal(noOrigin.status, 403, 'a cookie without Origin is refused too');
    const ws = await open(gw.url('/chat'), { headers: { cookie, origin: app.origin } });
    assert.equal(await roundTrip(ws, 'mine'), 'mine');
    assert.ok(!gw.logText().includes(cookie.split('=')[1]), 'session cookie leaked into the log');
    ws.close();
  });

  it('refuses a request without a valid session with the app\'s 401', async () => {
    const r = await refused(gw.url('/chat'), { headers: { cookie: 'session=not-a-session', origin: app.origin } });
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Cookie realm="app"');
    assert.ok(gw.auditReasons().includes('forward_denied'));
  });

  it('closes a live connection with 1008 when the session is revoked; other users stay', async () => {
    const bob = await app.login('bob', 'bob-pw');
    const victim = await app.login('victim', 'victim-pw');
    const canary = await open(gw.url('/chat'), { headers: { cookie: victim, origin: app.origin } });
    const ws = await open(gw.url('/chat'), { headers: { cookie: bob, origin: app.origin } });
    assert.equal(await roundTrip(ws), 'ping');
    app.revoke('bob');
    const { code, reason } = await closed(ws);
    assert.equal(code, 1008);
    assert.equal(reason, 'credential expired');
    assert.ok(gw.logs.some((l) => l.reason === 'credential_revoked' && l.principal === 'bob'), 'audit line');
    assert.equal(await roundTrip(canary, 'canary'), 'canary');
    canary.close();
  });
});
