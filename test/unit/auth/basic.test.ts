import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import type { Admission } from '../../../src/admission/types.js';
import { BasicAuthenticator } from '../../../src/auth/basic.js';
import { hashAlgorithmOf, hashPassword, hashShape, verifyPassword } from '../../../src/auth/passwords.js';
import { MemoryAttemptCounter } from '../../../src/shared-state/memory.js';
import { isRejection, makeHarness, type Harness } from './harness.js';

const dir = mkdtempSync(join(tmpdir(), 'gh-basic-'));
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

describe('basic authentication', () => {
  let h: Harness;
  before(async () => {
    const users = [
      '# users of the test gateway',
      `alice:${await hashPassword('correct horse', 'scrypt')}`,
      `bob:${await hashPassword('battery staple', 'argon2id')}`,
      // htpasswd -B writes $2y$ hashes.
      `carol:${bcrypt.hashSync('tr0ub4dor', 5).replace(/^\$2b\$/, '$2y$')}`,
      `dave:${await hashPassword('dave-pass', 'scrypt')}`,
    ].join('\n');
    writeFileSync(join(dir, 'users'), users);
    h = makeHarness({
      auth: { failures: { per_address: 5, per_user: 3, window: '1m' } },
      services: {
        admin: {
          path: '/admin', type: 'echo',
          auth: { methods: [{ type: 'basic', realm: 'Admin area', users_file: join(dir, 'users'), roles: { alice: ['admin'] } }] },
          authorize: { roles: ['admin'] },
        },
        open: {
          path: '/open', type: 'echo',
          auth: { methods: [{ type: 'basic', users_file: join(dir, 'users') }] },
        },
      },
    });
  });

  it('admits scrypt, argon2id and htpasswd bcrypt ($2y$) users', async () => {
    for (const [user, pw, addr] of [['alice', 'correct horse', '10.0.0.1'], ['bob', 'battery staple', '10.0.0.2'], ['carol', 'tr0ub4dor', '10.0.0.3']]) {
      const a = await h.admit('open', { headers: { authorization: basic(user, pw) }, remoteAddress: addr }) as Admission;
      assert.ok(!isRejection(a), `${user}: ${JSON.stringify(a)}`);
      assert.equal(a.principal?.id, user);
      assert.equal(a.principal?.method, 'basic');
    }
  });

  it('gives roles from config and authorizes by role', async () => {
    const a = await h.admit('admin', { headers: { authorization: basic('alice', 'correct horse') }, remoteAddress: '10.0.1.1' }) as Admission;
    assert.ok(!isRejection(a), JSON.stringify(a));
    assert.deepEqual(a.principal?.roles, ['admin']);
    const r = await h.admit('admin', { headers: { authorization: basic('bob', 'battery staple') }, remoteAddress: '10.0.1.2' });
    assert.ok(isRejection(r), 'bob has no admin role');
    assert.equal(r.status, 403);
    assert.equal(r.reason, 'not_authorized');
  });

  for (const [name, value, reason] of [
    ['wrong password', basic('alice', 'wrong'), 'basic_invalid'],
    ['unknown user', basic('mallory', 'x'), 'basic_invalid'],
    ['invalid base64', 'Basic %%%notbase64', 'basic_malformed'],
    ['no colon', `Basic ${Buffer.from('alice').toString('base64')}`, 'basic_malformed'],
    ['not UTF-8', `Basic ${Buffer.from([0x61, 0x3a, 0xff, 0xfe]).toString('base64')}`, 'basic_malformed'],
  ] as const) {
    it(`refuses ${name} with 401 and a Basic challenge`, async () => {
      const r = await h.admit('admin', { headers: { authorization: value }, remoteAddress: `10.1.${name.length}.9` });
      assert.ok(isRejection(r), 'expected a rejection');
      assert.equal(r.status, 401);
      assert.equal(r.reason, reason);
      assert.equal(r.headers['WWW-Authenticate'], 'Basic realm="Admin area", charset="UTF-8"');
      assert.ok(h.logLines().some((l) => l.reason === reason), 'audit line');
      assert.ok(!h.logText().includes(value.split(' ')[1]), 'credentials in the log');
    });
  }

  it('refuses two Authorization headers', async () => {
    const r = await h.admit('open', { headers: { authorization: [basic('alice', 'correct horse'), basic('bob', 'x')] }, remoteAddress: '10.2.0.1' });
    assert.ok(isRejection(r), 'expected a rejection');
    assert.equal(r.status, 401);
    assert.equal(r.reason, 'credentials_ambiguous');
  });

  it('limits failed attempts per user name from one address (429 + Retry-After); the user elsewhere and other users unaffected', async () => {
    // One address, one user: the per-user limit (3) trips before the per-address one (5).
    for (let i = 0; i < 3; i++) {
      const r = await h.admit('open', { headers: { authorization: basic('dave', `guess${i}`) }, remoteAddress: '10.3.0.1' });
      assert.ok(isRejection(r) && r.status === 401, `attempt ${i}`);
    }
    const blocked = await h.admit('open', { headers: { authorization: basic('dave', 'dave-pass') }, remoteAddress: '10.3.0.1' });
    assert.ok(isRejection(blocked), 'even the right password is refused while blocked');
    assert.equal(blocked.status, 429);
    assert.equal(blocked.reason, 'auth_rate_limited');
    const retry = Number(blocked.headers['Retry-After']);
    assert.ok(retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    // Canaries: dave from his own address, another user from the guessing address.
    const dave = await h.admit('open', { headers: { authorization: basic('dave', 'dave-pass') }, remoteAddress: '10.3.0.200' });
    assert.ok(!isRejection(dave), 'dave elsewhere is not locked out');
    const canary = await h.admit('open', { headers: { authorization: basic('alice', 'correct horse') }, remoteAddress: '10.3.0.1' });
    assert.ok(!isRejection(canary), 'another user from that address admitted');
    assert.ok(!h.logText().includes('dave-pass') && !h.logText().includes('guess'), 'passwords in the log');
  });

  it('limits failed attempts per client address, whatever the user name', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await h.admit('open', { headers: { authorization: basic(`u${i}`, 'x') }, remoteAddress: '10.4.0.1' });
      assert.ok(isRejection(r) && r.status === 401, `attempt ${i}`);
    }
    const r = await h.admit('open', { headers: { authorization: basic('alice', 'correct horse') }, remoteAddress: '10.4.0.1' });
    assert.ok(isRejection(r), 'blocked address');
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers['Retry-After']) >= 1, 'Retry-After');
    assert.ok(h.metrics.get('gatehouse_rejections_total', { reason: 'auth_rate_limited' }) >= 1, 'counted');
    const canary = await h.admit('open', { headers: { authorization: basic('alice', 'correct horse') }, remoteAddress: '10.4.0.2' });
    assert.ok(!isRejection(canary), 'other address unaffected');
  });
});

describe('basic authentication: unknown users cost what known ones cost', () => {
  for (const [algorithm, make] of [
    ['bcrypt', async () => bcrypt.hashSync('pw', 6).replace(/^\$2b\$/, '$2y$')],
    ['argon2id', async () => (await import('@node-rs/argon2')).hash('pw', { algorithm: 2 as never, memoryCost: 8192, timeCost: 3, parallelism: 1 })],
    ['scrypt', async () => hashPassword('pw', 'scrypt')],
  ] as const) {
    it(`checks an unknown user against a ${algorithm} hash of the users file's own parameters`, async () => {
      const file = join(dir, `users-${algorithm}`);
      const hashes = [await make(), await make()];
      writeFileSync(file, `a:${hashes[0]}\nb:${hashes[1]}\n`);
      const auth = new BasicAuthenticator({ type: 'basic', realm: 'r', users_file: file, roles: {} }, { counter: new MemoryAttemptCounter(), limits: { limit: 10, windowMs: 60_000 } });
      const dummy = await auth.timingDummy;
      assert.equal(hashAlgorithmOf(dummy), algorithm);
      assert.equal(hashShape(dummy), hashShape(hashes[0]), 'same algorithm, cost parameters and key length');
      assert.equal(await verifyPassword('pw', dummy), false, 'a random password');
    });
  }
});
