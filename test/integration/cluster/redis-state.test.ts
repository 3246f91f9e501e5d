/**
 * Two gateways sharing their state on a real Redis (Debian's redis-server,
 * started for this file on a free port): what one admits or refuses, the
 * other knows. Single-use tickets (minted and issued) are refused on the
 * other gateway, failure counters, handshake rates and connection counts add
 * up across both. With Redis frozen, tickets fail closed (503) and plain
 * connections are still admitted (limits counted in each process); once it
 * thaws, tickets work again. Redis holds no ticket in the clear.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Logger } from 'pino';
import { mintTicket } from '../../../src/auth/ticket.js';
import { hashPassword } from '../../../src/auth/passwords.js';
import { connectRedis, type RedisClient } from '../../../src/cluster/redis.js';
import { RedisSharedState } from '../../../src/cluster/redis-state.js';
import { parseConfig } from '../../../src/config/load.js';
import { createLogger } from '../../../src/observe/log.js';
import { startGateway, type TestGateway } from '../../helpers/gateway.js';
import { startRedis, type Redis } from '../../helpers/redis.js';
import { connect, type Outcome } from '../auth/common.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

const KEY = randomBytes(32).toString('hex');
const SECRET = randomBytes(24).toString('hex');
let redis: Redis;
const gateways: TestGateway[] = [];
const states: Array<{ state: RedisSharedState; client: RedisClient }> = [];
let a: TestGateway;
const stateLog: string[] = [];
let b: TestGateway;

const basic = (u: string, p: string): string => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

async function gateway(config: Record<string, unknown>): Promise<TestGateway> {
  const parsed = parseConfig(config, {});
  const client = connectRedis(parsed.cluster!);
  client.on('error', () => undefined);
  const sink = new Writable({ write(chunk: Buffer, _e, cb) { stateLog.push(chunk.toString()); cb(); } });
  const state = new RedisSharedState(client, { prefix: parsed.cluster!.key_prefix, log: createLogger('warn', sink) as Logger });
  await new Promise((r) => client.once('ready', r));
  await state.start();
  states.push({ state, client });
  const gw = await startGateway(config, {}, { shared: state });
  gateways.push(gw);
  return gw;
}

before(async () => {
  redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'gh-redis-state-'));
  writeFileSync(join(dir, 'users'), `alice:${await hashPassword('alice-secret-pw')}\n`);
  const config = {
    cluster: { redis: redis.url, secret: SECRET, redis_timeout: '300ms' },
    limits: { handshake_rate: 1, handshake_burst: 1000, connections_per_address: 1000 },
    auth: { failures: { per_address: 3, per_user: 100, window: '5m' }, tickets: { hmac_keys: [KEY] } },
    services: {
      echo: { path: '/echo', type: 'echo', allow_missing_origin: true },
      chat: { path: '/chat', type: 'echo', allow_missing_origin: true, auth: { methods: [{ type: 'ticket' }, { type: 'basic', users_file: join(dir, 'users') }] } },
      two: { path: '/two', type: 'echo', allow_missing_origin: true, max_connections: 2 },
    },
  };
  a = await gateway(config);
  b = await gateway(config);
});
after(async () => {
  for (const g of gateways) await g.stop();
  for (const { state, client } of states) { await state.close(); client.disconnect(); }
  await redis?.stop();
});

const status = (o: Outcome): number => {
  if (o.kind === 'open') { o.ws.terminate(); return 101; }
  return o.status;
};

test('a minted ticket used on one gateway is refused on the other', { timeout: 20_000 }, async () => {
  const ticket = mintTicket(KEY, { svc: 'chat', sub: 'bob', exp: Math.floor(Date.now() / 1000) + 30, jti: randomBytes(16).toString('base64url') });
  assert.equal(status(await connect(a.url(`/chat?ticket=${ticket}`))), 101, 'first use, on A');
  assert.equal(status(await connect(b.url(`/chat?ticket=${ticket}`))), 401, 'replay on B');
  assert.ok(b.auditReasons().includes('ticket_replayed'));
});

test('a ticket issued by one gateway opens once on the other, then nowhere; Redis holds it sealed', { timeout: 20_000 }, async () => {
  const res = await fetch(a.httpUrl('/.gatehouse/tickets?service=chat'), { method: 'POST', headers: { authorization: basic('alice', 'alice-secret-pw') } });
  assert.equal(res.status, 200);
  const { ticket } = await res.json() as { ticket: string };
  const keys = await redis.command('KEYS', '*') as string[];
  const dump = (await Promise.all(keys.filter((k) => k.includes(':tk:')).map((k) => redis.command('GET', k)))).join(' ');
  assert.ok(dump.length > 0, 'the ticket is in Redis');
  assert.ok(!keys.some((k) => k.includes(ticket)) && !dump.includes(ticket) && !dump.includes('alice'), 'neither the ticket nor its user is readable there');
  assert.equal(status(await connect(b.url(`/chat?ticket=${ticket}`))), 101, 'redeemed on B');
  assert.equal(status(await connect(a.url(`/chat?ticket=${ticket}`))), 401, 'and never again, on A');
});

test('failed authentications count across gateways', { timeout: 20_000 }, async () => {
  const from = '127.0.0.21';
  for (const [gw, i] of [[a, 0], [b, 1], [a, 2]] as const) {
    assert.equal(status(await connect(gw.url('/chat'), { headers: { authorization: basic('alice', `guess-${i}`) }, localAddress: from })), 401, `guess ${i}`);
  }
  assert.equal(status(await connect(b.url('/chat'), { headers: { authorization: basic('alice', 'alice-secret-pw') }, localAddress: from })), 429,
    'the third failure (two on A, one on B) blocks the address on B too');
});

test('the handshake rate of an address counts on both gateways', { timeout: 20_000 }, async () => {
  const from = '127.0.0.22';
  const limits = { rate: 1, burst: 1000 };
  // A flood from this address empties its bucket (through the state itself: 1000 handshakes are too slow for a test)...
  const shared = states[0].state;
  let wait = 0;
  while ((wait = await shared.handshakes.take(from, limits)) === 0) { /* spend */ }
  // ... which refills at 1/s: once a token is there, A takes it and B, right after, finds none.
  await new Promise((r) => setTimeout(r, wait));
  assert.equal(status(await connect(a.url('/echo'), { localAddress: from })), 101, 'the refilled token, on A');
  assert.equal(status(await connect(b.url('/echo'), { localAddress: from })), 429, 'B sees the bucket A emptied');
});

test('connection limits count the connections of both gateways; a closed one frees its slot everywhere', { timeout: 20_000 }, async () => {
  const first = await connect(a.url('/two'));
  const second = await connect(b.url('/two'));
  assert.equal(first.kind, 'open');
  assert.equal(second.kind, 'open');
  assert.equal(status(await connect(a.url('/two'))), 503, 'max_connections: 2 holds across gateways (A)');
  assert.equal(status(await connect(b.url('/two'))), 503, '... and (B)');
  if (first.kind === 'open') {
    const closed = new Promise((r) => first.ws.once('close', r));
    first.ws.close();
    await closed;
  }
  let s = 0;
  for (let i = 0; i < 50 && s !== 101; i++) s = status(await connect(b.url('/two')));
  assert.equal(s, 101, 'the slot A gave back is B\'s to use');
  if (second.kind === 'open') second.ws.terminate();
});

test('Redis frozen: tickets fail closed with 503, plain connections are still admitted; thawed, tickets work again', { timeout: 30_000 }, async () => {
  const minted = (): string => mintTicket(KEY, { svc: 'chat', sub: 'dora', exp: Math.floor(Date.now() / 1000) + 30, jti: randomBytes(16).toString('base64url') });
  const from = { localAddress: '127.0.0.23' };
  redis.freeze();
  try {
    const refused = await connect(a.url(`/chat?ticket=${minted()}`), from);
    assert.equal(refused.kind, 'refused');
    if (refused.kind === 'refused') {
      assert.equal(refused.status, 503, 'a ticket is not decided without Redis');
      assert.equal(refused.headers['retry-after'], '5');
    }
    assert.ok(a.auditReasons().includes('shared_state_unavailable'));
    assert.equal(status(await connect(a.url('/echo'), from)), 101, 'a connection without a ticket is admitted, limits counted in the process');
    assert.ok(stateLog.some((l) => l.includes('redis unavailable')), 'the fallback is logged');
  } finally {
    redis.thaw();
  }
  let s = 0;
  for (let i = 0; i < 50 && s !== 101; i++) s = status(await connect(a.url(`/chat?ticket=${minted()}`), from));
  assert.equal(s, 101, 'tickets work again once Redis answers');
});
