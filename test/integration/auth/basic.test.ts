/**
 * Basic authentication through the whole gateway, with a users file made by
 * the real `gatehouse hash-password` command: admitted, refused with a Basic
 * challenge, and brute force stopped with 429 + Retry-After while a canary
 * connection keeps working.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { cheapPasswordHash } from '../../helpers/test-password-hash.js';
import { open, refused, roundTrip } from './common.js';

const MAIN = join(import.meta.dirname, '../../../src/main.ts');
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
let gw: TestGateway;
let usersFile: string;

async function hashPasswordCli(user: string, password: string): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'hash-password', '--user', user], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stdin.end(`${password}\n`);
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
  return out.trim();
}

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-basic-int-'));
  usersFile = join(dir, 'users');
  // alice's hash is the command's, at its default cost; carol and dave, whom the guessing tests check dozens of
  // times, have cheap ones (the default cost took over 10 s per check at load 30).
  writeFileSync(usersFile, `${await hashPasswordCli('alice', 'alice-secret-pw')}\ncarol:${cheapPasswordHash('carol-secret-pw')}\ndave:${cheapPasswordHash('dave-secret-pw')}\n`);
  gw = await startGateway({
    auth: { failures: { per_address: 4, per_user: 3, window: '1m' } },
    services: {
      admin: { path: '/admin', type: 'echo', allow_missing_origin: true, auth: { methods: [{ type: 'basic', realm: 'Admin', users_file: join(dir, 'users') }] } },
    },
  });
});
after(() => gw.stop());

describe('basic through the gateway', () => {
  it('admits a user from a users file written by `gatehouse hash-password`', async () => {
    const ws = await open(gw.url('/admin'), { headers: { authorization: basic('alice', 'alice-secret-pw') } });
    assert.equal(await roundTrip(ws), 'ping');
    ws.close();
  });

  it('stops guessing with 429 + Retry-After; a canary connection keeps working; no password in the log', async () => {
    const canary = await open(gw.url('/admin'), { headers: { authorization: basic('carol', 'carol-secret-pw') } });
    for (let i = 0; i < 3; i++) {
      const r = await refused(gw.url('/admin'), { headers: { authorization: basic('dave', `guess-${i}`) } });
      assert.equal(r.status, 401);
      assert.equal(r.headers['www-authenticate'], 'Basic realm="Admin", charset="UTF-8"');
    }
    const blocked = await refused(gw.url('/admin'), { headers: { authorization: basic('dave', 'dave-secret-pw') } });
    assert.equal(blocked.status, 429);
    assert.ok(Number(blocked.headers['retry-after']) >= 1, 'Retry-After');
    assert.ok(gw.auditReasons().includes('basic_invalid') && gw.auditReasons().includes('auth_rate_limited'));
    assert.ok(!/guess-|secret-pw/.test(gw.logText()), 'password in the log');
    assert.equal(await roundTrip(canary, 'canary'), 'canary');
    canary.close();
  });

  it('auth.failures per_address and per_user 0: guessing is never stopped; left out, the defaults (10) stop it', { timeout: 60_000 }, async () => {
    const service = { path: '/admin', type: 'echo', allow_missing_origin: true, auth: { methods: [{ type: 'basic', realm: 'Admin', users_file: usersFile }] } };
    const guesses = async (g: TestGateway, n: number): Promise<number[]> => {
      const statuses: number[] = [];
      for (let i = 0; i < n; i++) statuses.push((await refused(g.url('/admin'), { headers: { authorization: basic('dave', `guess-${i}`) } })).status);
      return statuses;
    };
    const unlimited = await startGateway({ auth: { failures: { per_address: 0, per_user: 0 } }, services: { admin: service } });
    try {
      assert.deepEqual(await guesses(unlimited, 12), Array(12).fill(401), '12 wrong passwords: each answered 401, none 429');
      const ws = await open(unlimited.url('/admin'), { headers: { authorization: basic('dave', 'dave-secret-pw') } });
      assert.equal(await roundTrip(ws), 'ping', 'the right password still admitted');
      ws.close();
    } finally {
      await unlimited.stop();
    }
    const byDefault = await startGateway({ services: { admin: service } });
    try {
      assert.deepEqual(await guesses(byDefault, 11), [...Array(10).fill(401), 429], 'left out: 10 failures, then 429');
    } finally {
      await byDefault.stop();
    }
  });
});
