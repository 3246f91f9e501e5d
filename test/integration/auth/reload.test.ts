/**
 * What guards authentication survives a configuration reload (SIGHUP to a
 * real `gatehouse start` process): a used single-use ticket stays used, a
 * ticket issued before the reload is still good once, and an address blocked
 * for failed attempts stays blocked.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { hashPassword } from '../../../src/auth/passwords.js';
import { mintTicket } from '../../../src/auth/ticket.js';
import { startGatewayProcess, type GatewayProcess } from '../services/helpers/gateway-process.js';
import { connect, type Outcome } from './common.js';

const KEY = randomBytes(32).toString('hex');
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
let gw: GatewayProcess;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gh-auth-reload-'));
  writeFileSync(join(dir, 'users'), `alice:${await hashPassword('alice-secret-pw')}\n`);
  gw = await startGatewayProcess(`
listen: [{ host: 127.0.0.1, port: 0 }]
log: { level: info }
limits: { handshake_rate: 1000, handshake_burst: 1000 }
auth:
  failures: { per_address: 3, per_user: 3, window: 5m }
  tickets: { hmac_keys: ["${KEY}"] }
services:
  chat:
    path: /chat
    type: echo
    allow_missing_origin: true
    auth: { methods: [{ type: ticket }, { type: basic, users_file: ${join(dir, 'users')} }] }
`);
});
after(async () => {
  await gw?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const status = (o: Outcome): number => {
  if (o.kind === 'open') { o.ws.terminate(); return 101; }
  return o.status;
};

it('after SIGHUP a used ticket stays used, an issued one still opens once, a blocked address stays blocked', { timeout: 60_000 }, async () => {
  const minted = mintTicket(KEY, { svc: 'chat', sub: 'bob', exp: Math.floor(Date.now() / 1000) + 30, jti: randomBytes(16).toString('base64url') });
  assert.equal(status(await connect(gw.url(`/chat?ticket=${minted}`))), 101, 'minted ticket, first use');
  const res = await fetch(`http://127.0.0.1:${gw.port}/.gatehouse/tickets?service=chat`, { method: 'POST', headers: { authorization: basic('alice', 'alice-secret-pw') } });
  assert.equal(res.status, 200, 'ticket issued');
  const issued = (await res.json() as { ticket: string }).ticket;
  for (let i = 0; i < 3; i++) {
    assert.equal(status(await connect(gw.url('/chat'), { headers: { authorization: basic('alice', `guess-${i}`) }, localAddress: '127.0.0.7' })), 401, `guess ${i}`);
  }
  assert.equal(status(await connect(gw.url('/chat'), { headers: { authorization: basic('alice', 'alice-secret-pw') }, localAddress: '127.0.0.7' })), 429, 'blocked before the reload');

  const reloaded = gw.waitFor(/configuration reloaded/);
  gw.child.kill('SIGHUP');
  await reloaded;

  // The audit line may reach the pipe after the answer reaches the client: wait for it, from before the request.
  const replayed = gw.waitFor(/"reason":"ticket_replayed"/);
  assert.equal(status(await connect(gw.url(`/chat?ticket=${minted}`))), 401, 'the used minted ticket is refused after the reload');
  await replayed;
  assert.equal(status(await connect(gw.url(`/chat?ticket=${issued}`))), 101, 'the ticket issued before the reload opens once');
  assert.equal(status(await connect(gw.url(`/chat?ticket=${issued}`))), 401, '... and only once');
  assert.equal(status(await connect(gw.url('/chat'), { headers: { authorization: basic('alice', 'alice-secret-pw') }, localAddress: '127.0.0.7' })), 429, 'still blocked after the reload');
  assert.equal(status(await connect(gw.url('/chat'), { headers: { authorization: basic('alice', 'alice-secret-pw') }, localAddress: '127.0.0.8' })), 101, 'canary from another address');
});
