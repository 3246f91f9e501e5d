/**
 * The failed-attempt limits under attack, through the whole gateway with real
 * WebSocket clients: parallel guessing, guessing from many addresses of one
 * IPv6 /64, and attempts to lock a named user out from elsewhere.
 *
 * Clients come from distinct loopback addresses (127.0.0.x as the TCP source);
 * IPv6 clients are named by X-Forwarded-For from 127.0.0.1, the one trusted
 * proxy, as a load balancer in front of the gateway would name them.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { cheapPasswordHash } from '../../helpers/test-password-hash.js';
import { connect, type Outcome } from './common.js';

const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
let gw: TestGateway;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-auth-attacks-'));
  // Cheap scrypt: what is under test is how many attempts are checked, not the hash (the default cost took
  // over 10 s per check at load 30, and these tests check dozens).
  writeFileSync(join(dir, 'users'), `alice:${cheapPasswordHash('alice-secret-pw')}\nbob:${cheapPasswordHash('bob-secret-pw')}\ncarol:${cheapPasswordHash('carol-secret-pw')}\n`);
  gw = await startGateway({
    trusted_proxies: ['127.0.0.1'],
    // Guessers come in bursts from one address: the handshake rate is not what is under test.
    limits: { handshake_rate: 10_000, handshake_burst: 10_000 },
    auth: { failures: { per_address: 10, per_user: 10, window: '1m' } },
    services: {
      admin: { path: '/admin', type: 'echo', allow_missing_origin: true, auth: { methods: [{ type: 'basic', users_file: join(dir, 'users') }] } },
    },
  });
});
after(() => gw.stop());

/** A handshake from loopback address `from` (127.0.0.x), or naming `forwardedFor` through the trusted proxy. */
function attempt(authorization: string, where: { from: string } | { forwardedFor: string }): Promise<Outcome> {
  const headers: Record<string, string> = { authorization };
  let localAddress = '127.0.0.1';
  if ('from' in where) localAddress = where.from;
  else headers['x-forwarded-for'] = where.forwardedFor;
  return connect(gw.url('/admin'), { headers, localAddress });
}

function tally(outcomes: Outcome[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const o of outcomes) {
    const k = o.kind === 'open' ? 'open' : String(o.status);
    t[k] = (t[k] ?? 0) + 1;
    if (o.kind === 'open') o.ws.terminate();
  }
  return t;
}

const invalidFrom = (client: string) => gw.logs.filter((l) => l.audit && l.reason === 'basic_invalid' && l.client === client).length;

describe('failed-attempt limits under attack', () => {
  it('60 parallel wrong passwords from one address: only per_address (10) are checked, the rest get 429 unhashed', { timeout: 60_000 }, async () => {
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => attempt(basic('alice', `guess-${i}`), { from: '127.0.0.11' })));
    const t = tally(outcomes);
    assert.equal(invalidFrom('127.0.0.11'), 10, `passwords hashed (401 basic_invalid audit lines); outcomes ${JSON.stringify(t)}`);
    assert.deepEqual(t, { 401: 10, 429: 50 }, 'outcomes');
    const canary = await attempt(basic('bob', 'bob-secret-pw'), { from: '127.0.0.12' });
    assert.equal(canary.kind, 'open', 'another address is unaffected');
    tally([canary]);
  });

  it('60 addresses of one IPv6 /64 share one budget: 10 checked, 50 get 429; another /64 is unaffected', { timeout: 60_000 }, async () => {
    const outcomes = await Promise.all(Array.from({ length: 60 }, (_, i) => attempt(basic(`user${i}`, 'guess'), { forwardedFor: `2001:db8:1:2::${(i + 1).toString(16)}` })));
    const hashed = gw.logs.filter((l) => l.audit && l.reason === 'basic_invalid' && String(l.client).startsWith('2001:db8:1:2:')).length;
    const t = tally(outcomes);
    assert.equal(hashed, 10, `attempts checked; outcomes ${JSON.stringify(t)}`);
    assert.deepEqual(t, { 401: 10, 429: 50 }, 'outcomes');
    const canary = await attempt(basic('bob', 'bob-secret-pw'), { forwardedFor: '2001:db8:1:3::1' });
    assert.equal(canary.kind, 'open', 'another /64 is unaffected');
    tally([canary]);
  });

  it('ten wrong passwords for carol from ten addresses do not lock carol out of her own address', { timeout: 60_000 }, async () => {
    for (let i = 0; i < 10; i++) {
      const o = await attempt(basic('carol', `guess-${i}`), { from: `127.0.0.${21 + i}` });
      assert.equal(o.kind === 'refused' && o.status, 401, `attempt ${i}`);
    }
    const own = await attempt(basic('carol', 'carol-secret-pw'), { from: '127.0.0.40' });
    assert.equal(own.kind === 'open' ? 101 : own.status, 101, 'carol from her own address');
    tally([own]);
    // Guessing carol from one address still stops there at per_user.
    for (let i = 0; i < 10; i++) assert.equal((await attempt(basic('carol', `again-${i}`), { from: '127.0.0.41' }) as { status?: number }).status, 401);
    const blocked = await attempt(basic('carol', 'carol-secret-pw'), { from: '127.0.0.41' });
    assert.equal(blocked.kind === 'refused' && blocked.status, 429, 'the guessing address is blocked, even with the right password');
  });
});
