import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { isAuthorized } from '../../../src/auth/authorize.js';
import { findCookie, takeProtocolCredential } from '../../../src/auth/credentials.js';
import { hashPasswordCommand } from '../../../src/auth/hash-password-command.js';
import { hashAlgorithmOf, hashPassword, verifyPassword } from '../../../src/auth/passwords.js';
import { DeadlineScheduler, type ScheduledTask } from '../../../src/auth/scheduler.js';
import { MemoryAttemptCounter, MemorySharedState } from '../../../src/shared-state/memory.js';
import { stopWatching, unwatchChannel, watchCredentials } from '../../../src/auth/expiry.js';
import type { Admission, Principal } from '../../../src/admission/types.js';
import type { Channel } from '../../../src/channel.js';
import { parseUsersFile } from '../../../src/auth/users-file.js';
import { ConfigError } from '../../../src/errors.js';
import type { AdmissionContext } from '../../../src/admission/types.js';
import { request } from './harness.js';

describe('password hashes', () => {
  it('verifies scrypt, argon2id and bcrypt ($2y$, $2b$) hashes and rejects wrong passwords', async () => {
    for (const alg of ['scrypt', 'argon2id', 'bcrypt'] as const) {
      const h = await hashPassword('pässwörd', alg);
      assert.equal(hashAlgorithmOf(h), alg);
      assert.equal(await verifyPassword('pässwörd', h), true, alg);
      assert.equal(await verifyPassword('passwörd', h), false, alg);
    }
    const y = bcrypt.hashSync('apache', 5).replace(/^\$2b\$/, '$2y$');
    assert.equal(await verifyPassword('apache', y), true);
  });

  it('refuses unknown hash formats and out-of-range scrypt parameters', async () => {
    await assert.rejects(verifyPassword('x', '{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M='), { code: 'GH_AUTH_BAD_HASH' });
    await assert.rejects(verifyPassword('x', `$scrypt$ln=30,r=8,p=1$${'A'.repeat(22)}$${'B'.repeat(43)}`), { code: 'GH_AUTH_BAD_HASH' });
  });

  it('parses a users file and reports bad lines without echoing hashes', async () => {
    const good = await hashPassword('x');
    const users = parseUsersFile(`# comment\n\nalice:${good}\n`, 'users');
    assert.equal(users.get('alice'), good);
    assert.throws(() => parseUsersFile('bob:{SHA}secrethash\nalice\n', 'users'), (err: ConfigError) => {
      assert.equal(err.code, 'GH_CONFIG_INVALID');
      assert.equal(err.issues.length, 2);
      assert.ok(!err.issues.join(' ').includes('secrethash'), 'hash echoed');
      return true;
    });
  });
});

describe('gatehouse hash-password', () => {
  async function run(args: string[], input: string) {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '', err = '';
    stdout.on('data', (c) => { out += c; });
    stderr.on('data', (c) => { err += c; });
    stdin.end(input);
    const code = await hashPasswordCommand(args, { stdin, stdout, stderr });
    return { code, out, err };
  }

  it('hashes a password read from stdin, as name:hash with --user', async () => {
    const r = await run(['--user', 'alice', '--algorithm', 'argon2id'], 'open sesame\n');
    assert.equal(r.code, 0, r.err);
    const m = /^alice:(\$argon2id\$\S+)\n$/.exec(r.out);
    assert.ok(m, r.out);
    assert.equal(await verifyPassword('open sesame', m[1]), true);
    assert.ok(!r.out.includes('open sesame'), 'password echoed');
  });

  it('defaults to scrypt and refuses bad arguments and empty input', async () => {
    const r = await run([], 'pw');
    assert.equal(r.code, 0);
    assert.equal(hashAlgorithmOf(r.out.trim()), 'scrypt');
    assert.equal((await run(['--algorithm', 'md5'], 'pw\n')).code, 2);
    assert.equal((await run(['--user', 'a:b'], 'pw\n')).code, 2);
    assert.equal((await run([], '')).code, 1);
  });
});

describe('failure counter (in-process shared state)', () => {
  const limits = { limit: 3, windowMs: 60_000 };
  const fail = (l: MemoryAttemptCounter, key: string): void => { assert.equal(l.reserve(key, limits), 0, `reserve ${key}`); l.settle(key, true, limits); };

  it('blocks a key at its limit until the window ends, and bounds its memory', () => {
    let now = 0;
    const l = new MemoryAttemptCounter(100, () => now);
    for (let i = 0; i < 3; i++) fail(l, 'a');
    now = 10_000;
    assert.equal(l.reserve('a', limits), 50_000);
    assert.equal(l.reserve('b', limits), 0, 'other keys unaffected');
    l.settle('b', false, limits);
    assert.equal(l.reserve('a', { limit: 4, windowMs: 60_000 }), 0, 'limits come with each call: a reload that raises them applies to the counts kept');
    l.settle('a', false, limits);
    now = 60_000;
    assert.equal(l.reserve('a', limits), 0, 'window over');
    l.settle('a', false, limits);
    for (let i = 0; i < 1000; i++) fail(l, `k${i}`);
    assert.ok(l.size <= 100, `size ${l.size}`);
  });

  it('counts attempts under way against the budget: of parallel attempts at most the remaining budget is let through', () => {
    const l = new MemoryAttemptCounter(100, () => 0);
    fail(l, 'a');
    assert.equal(l.reserve('a', limits), 0);
    assert.equal(l.reserve('a', limits), 0);
    assert.equal(l.reserve('a', limits), 1000, 'two under way + one failure = the limit: wait for them');
    l.settle('a', false, limits);
    assert.equal(l.reserve('a', limits), 0, 'a success gives its place back');
    l.settle('a', true, limits);
    l.settle('a', true, limits);
    assert.equal(l.reserve('a', limits), 60_000, 'three failures: blocked for the window');
    assert.equal(l.size, 1);
    const ok = new MemoryAttemptCounter(100, () => 0);
    assert.equal(ok.reserve('x', limits), 0);
    ok.settle('x', false, limits);
    assert.equal(ok.size, 0, 'a key with no failure and nothing under way is forgotten');
  });

  it('forgets windows that are over, though their keys never come again', () => {
    let now = 0;
    const l = new MemoryAttemptCounter(100, () => now);
    for (let i = 0; i < 50; i++) fail(l, `k${i}`);
    assert.equal(l.reserve('u', limits), 0, 'under way');
    now = 60_000;
    assert.equal(l.reserve('other', limits), 0);
    l.settle('other', false, limits);
    assert.equal(l.size, 1, 'the 50 ended windows swept on use; the attempt under way kept');
    l.settle('u', false, limits);
    assert.equal(l.size, 0);
  });

  it('keeps its windows on the monotonic clock: a wall-clock step neither ends nor extends a lockout', (t) => {
    // The system time as the process sees it, stepped below (NTP, an operator). One mock: mocking a mocked method restores wrongly.
    const realNow = Date.now;
    let step = 0;
    t.mock.method(Date, 'now', () => realNow() + step);
    // The counters the gateway uses, on their own clock (none injected).
    const { addressFailures: l } = new MemorySharedState();
    for (let i = 0; i < 3; i++) fail(l, 'a');
    step = 86_400_000;
    const forward = l.reserve('a', limits);
    assert.ok(forward > 0 && forward <= 60_000, `the system time jumps a day forward: still blocked for at most the window, got ${forward} ms`);
    step = -3_600_000;
    const back = l.reserve('a', limits);
    assert.ok(back > 0 && back <= 60_000, `the system time jumps an hour back: blocked for at most the window, not an hour more, got ${back} ms`);
  });
});

describe('deadline scheduler', () => {
  it('runs tasks in deadline order on one timer, skipping cancelled ones', async () => {
    const s = new DeadlineScheduler();
    const ran: string[] = [];
    const start = Date.now();
    const done = new Promise<void>((resolve) => {
      s.schedule(start + 30, () => ran.push('c'));
      s.schedule(start + 10, () => ran.push('a'));
      const x = s.schedule(start + 15, () => ran.push('x'));
      s.schedule(start + 20, () => { ran.push('b'); throw new Error('a failing task does not stop others'); });
      s.schedule(start + 40, () => { ran.push('d'); resolve(); });
      x.cancel();
    });
    // The scheduler's timer is unref'd (deadlines never keep a process alive): hold the loop open meanwhile.
    const keepAlive = setInterval(() => {}, 1000);
    await done;
    clearInterval(keepAlive);
    assert.deepEqual(ran, ['a', 'b', 'c', 'd']);
    assert.equal(s.size, 0);
  });

  it('compacts when most tasks are cancelled', () => {
    const s = new DeadlineScheduler();
    const far = Date.now() + 3_600_000;
    const tasks = Array.from({ length: 5000 }, (_, i) => s.schedule(far + i, () => {}));
    for (const t of tasks.slice(0, 4990)) t.cancel();
    assert.equal(s.size, 10);
    for (const t of tasks.slice(4990)) t.cancel();
    assert.equal(s.size, 0);
  });

  it('calls an object target back with the task that is due, and never a cancelled one', async () => {
    const s = new DeadlineScheduler();
    const seen: ScheduledTask[] = [];
    const target = { onDeadline: (task: ScheduledTask) => { seen.push(task); } };
    const now = Date.now();
    const first = s.schedule(now + 5, target);
    const dropped = s.schedule(now + 10, target);
    const last = s.schedule(now + 15, target);
    dropped.cancel();
    const keepAlive = setInterval(() => {}, 1000);
    while (s.size > 0) await new Promise((r) => setTimeout(r, 5));
    clearInterval(keepAlive);
    assert.deepEqual(seen, [first, last]);
  });
});

describe('credential watch', () => {
  /** A channel stand-in that records closes; the watch only reads `closed`, `admission` and calls `close`. */
  function watched(expiresAt: number): { channel: Channel & { closes: [number, string][] }; principal: Principal; scheduler: DeadlineScheduler } {
    const principal: Principal = { id: 'alice', roles: [], claims: {}, expiresAt, method: 'jwt' };
    const admission = { principal, service: { name: 'svc', auth: { grace: 0 } }, client: { address: '127.0.0.1', port: 1 }, id: 'c1' } as unknown as Admission;
    const closes: [number, string][] = [];
    const channel = { closed: false, admission, closes } as unknown as Channel & { closes: [number, string][] };
    (channel as { close: Channel['close'] }).close = (code = 1000, reason = '') => {
      closes.push([code, reason]);
      (channel as { closed: boolean }).closed = true;
    };
    const scheduler = new DeadlineScheduler();
    watchCredentials(channel, admission, { scheduler });
    return { channel, principal, scheduler };
  }
  /** Resolves once `s` has run every task due before `at`: a probe due at `at` runs after them (tasks run in deadline order). */
  const passed = async (s: DeadlineScheduler, at: number): Promise<void> => {
    const keepAlive = setInterval(() => {}, 1000);
    await new Promise<void>((resolve) => { s.schedule(at, () => resolve()); });
    clearInterval(keepAlive);
  };

  it('closes the channel with 1008 "credential expired" at the principal\'s expiry', async () => {
    const expiry = Date.now() + 10;
    const w = watched(expiry);
    assert.equal(w.scheduler.size, 1, 'the expiry is scheduled');
    await passed(w.scheduler, expiry + 1);
    assert.deepEqual(w.channel.closes, [[1008, 'credential expired']], 'closed at expiry');
    assert.equal(w.scheduler.size, 0, 'nothing left scheduled');
  });

  it('ends with the Admission\'s release or the channel\'s end, leaving nothing scheduled', async () => {
    const expiry = Date.now() + 10;
    const released = watched(expiry);
    stopWatching(released.principal);
    assert.equal(released.scheduler.size, 0, 'release unschedules the expiry');
    const ended = watched(expiry);
    unwatchChannel(ended.channel);
    assert.equal(ended.scheduler.size, 0, 'the channel\'s end unschedules the expiry');
    // Past the expiry (an event, not a sleep): a deadline left behind would have closed its channel by now.
    await Promise.all([passed(released.scheduler, expiry + 1), passed(ended.scheduler, expiry + 1)]);
    assert.deepEqual(released.channel.closes, [], 'no close after release');
    assert.deepEqual(ended.channel.closes, [], 'no close after the channel ended');
  });
});

describe('credential helpers', () => {
  it('finds a cookie, tolerates a repeated equal value, flags conflicting ones', () => {
    assert.deepEqual(findCookie(request({ headers: { cookie: 'a=1; sid=x; b=2' } }), 'sid'), { kind: 'found', value: 'x' });
    assert.deepEqual(findCookie(request({ headers: { cookie: 'sid=x; sid=x' } }), 'sid'), { kind: 'found', value: 'x' });
    assert.deepEqual(findCookie(request({ headers: { cookie: 'sid=x; sid=y' } }), 'sid'), { kind: 'ambiguous' });
    assert.deepEqual(findCookie(request({ headers: { cookie: 'SID=x' } }), 'sid'), { kind: 'absent' });
  });

  it('takes a protocol-carried credential out of the offer, parsing the header if needed', () => {
    const ctx = { request: request({ headers: { 'sec-websocket-protocol': 'v12.stomp, bearer.abc.def.ghi, v11.stomp' } }), offeredProtocols: [] as string[] } as unknown as AdmissionContext;
    assert.equal(takeProtocolCredential(ctx, 'bearer.'), 'abc.def.ghi');
    assert.deepEqual(ctx.offeredProtocols, ['v12.stomp', 'v11.stomp']);
  });
});

describe('authorization rules', () => {
  const p = { id: 'alice', roles: ['staff'], claims: { plan: 'pro', groups: ['a', 'b'], admin: true }, method: 'jwt' };
  it('allows by user, role or claim value; refuses otherwise', () => {
    const base = { users: [], roles: [], claims: {} };
    assert.equal(isAuthorized(p, base), true, 'empty rules: any authenticated principal');
    assert.equal(isAuthorized(p, { ...base, users: ['alice'] }), true);
    assert.equal(isAuthorized(p, { ...base, users: ['bob'] }), false);
    assert.equal(isAuthorized(p, { ...base, roles: ['staff'] }), true);
    assert.equal(isAuthorized(p, { ...base, roles: ['admin'] }), false);
    assert.equal(isAuthorized(p, { ...base, claims: { plan: ['pro', 'team'] } }), true);
    assert.equal(isAuthorized(p, { ...base, claims: { groups: ['b'] } }), true);
    assert.equal(isAuthorized(p, { ...base, claims: { admin: ['true'] } }), true);
    assert.equal(isAuthorized(p, { ...base, claims: { plan: ['free'] } }), false);
    assert.equal(isAuthorized(p, { ...base, claims: { constructor: ['x'] } }), false, 'no prototype lookups');
  });
});
