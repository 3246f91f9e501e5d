import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { Admission } from '../../../src/admission/types.js';
import { handleTicketRequest } from '../../../src/auth/ticket-endpoint.js';
import { mintTicket, TicketStore } from '../../../src/auth/ticket.js';
import { parseConfig } from '../../../src/config/load.js';
import { MemorySingleUseIds, MemoryTicketVault } from '../../../src/shared-state/memory.js';
import { isRejection, makeHarness, request, type Harness } from './harness.js';

const KEY = 'k'.repeat(40);
const dir = mkdtempSync(join(tmpdir(), 'gh-ticket-'));

describe('tickets', () => {
  let h: Harness;
  let signer: CryptoKey;
  let bearer: string;

  before(async () => {
    const kp = await generateKeyPair('ES256');
    signer = kp.privateKey;
    writeFileSync(join(dir, 'ec.pem'), await exportSPKI(kp.publicKey));
    bearer = await new SignJWT({ roles: ['chat'] }).setProtectedHeader({ alg: 'ES256' }).setSubject('alice').setIssuer('iss').setAudience('gw').setExpirationTime('10m').sign(signer);
    const jwt = { type: 'jwt', issuers: [{ issuer: 'iss', audience: 'gw', algorithms: ['ES256'], key_files: [join(dir, 'ec.pem')] }] };
    h = makeHarness({
      auth: { failures: { per_address: 1000 }, tickets: { hmac_keys: [KEY] } },
      services: {
        chat: { path: '/chat', type: 'echo', auth: { methods: [{ type: 'ticket' }, jwt] }, authorize: { roles: ['chat'] } },
        other: { path: '/other', type: 'echo', auth: { methods: [{ type: 'ticket' }, jwt] } },
        minted: { path: '/minted', type: 'echo', auth: { methods: [{ type: 'ticket' }] } },
      },
    });
  });

  async function issue(service: string, headers: Record<string, string> = { authorization: `Bearer ${bearer}` }): Promise<string> {
    const res = await handleTicketRequest(request({ method: 'POST', url: `/.gatehouse/tickets?service=${service}`, headers }), h);
    assert.equal(res.status, 200, res.body);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = JSON.parse(res.body) as { ticket: string; expires_in: number };
    assert.match(body.ticket, /^gt\.[A-Za-z0-9_-]{43}$/);
    assert.equal(body.expires_in, 30);
    return body.ticket;
  }

  it('issues a ticket to an authenticated caller; it admits once, then is refused (replay)', async () => {
    const t = await issue('chat');
    const a = await h.admit('chat', { url: `/chat?ticket=${t}` }) as Admission;
    assert.ok(!isRejection(a), JSON.stringify(a));
    assert.equal(a.principal?.id, 'alice');
    assert.equal(a.principal?.method, 'ticket');
    assert.ok(a.principal?.expiresAt !== undefined, 'carries the bearer token expiry');
    const replay = await h.admit('chat', { url: `/chat?ticket=${t}` });
    assert.ok(isRejection(replay), 'replay refused');
    assert.equal(replay.status, 401);
    assert.equal(replay.reason, 'ticket_unknown');
    assert.ok(!h.logText().includes(t.slice(3)), 'ticket in the log');
  });

  it('of 100 racing handshakes with one ticket exactly one succeeds', async () => {
    const t = await issue('chat');
    const results = await Promise.all(Array.from({ length: 100 }, () => h.admit('chat', { url: `/chat?ticket=${t}` })));
    assert.equal(results.filter((r) => !isRejection(r)).length, 1);
    assert.ok(results.filter(isRejection).every((r) => r.status === 401), 'the others get 401');
  });

  it('binds a ticket to its service (403) and to the issuing origin (403)', async () => {
    const t = await issue('chat');
    const r = await h.admit('other', { url: `/other?ticket=${t}` });
    assert.ok(isRejection(r) && r.status === 403 && r.reason === 'ticket_wrong_service', JSON.stringify(r));

    const own = 'http://gw.test';
    const t2 = await issue('chat', { authorization: `Bearer ${bearer}`, origin: own });
    // Both origins pass the service's origin policy; the ticket is bound to the first.
    const wrong = await h.admit('chat', { url: `/chat?ticket=${t2}`, headers: { origin: 'https://other.gw.test' } });
    assert.ok(isRejection(wrong) && wrong.status === 403 && wrong.reason === 'ticket_wrong_origin', JSON.stringify(wrong));
    const t3 = await issue('chat', { authorization: `Bearer ${bearer}`, origin: own });
    assert.ok(!isRejection(await h.admit('chat', { url: `/chat?ticket=${t3}`, headers: { origin: own } })), 'same origin admitted');
  });

  it('the endpoint refuses unauthenticated callers, foreign origins, unknown services and unauthorized users', async () => {
    const none = await handleTicketRequest(request({ method: 'POST', url: '/.gatehouse/tickets?service=chat' }), h);
    assert.equal(none.status, 401);
    const foreign = await handleTicketRequest(request({ method: 'POST', url: '/.gatehouse/tickets?service=chat', headers: { authorization: `Bearer ${bearer}`, origin: 'https://evil.example' } }), h);
    assert.equal(foreign.status, 403);
    assert.ok(!('access-control-allow-origin' in foreign.headers), 'no CORS grant for a foreign origin');
    const unknown = await handleTicketRequest(request({ method: 'POST', url: '/.gatehouse/tickets?service=nope', headers: { authorization: `Bearer ${bearer}` } }), h);
    assert.equal(unknown.status, 404);
    const get = await handleTicketRequest(request({ method: 'GET', url: '/.gatehouse/tickets?service=chat', headers: { authorization: `Bearer ${bearer}` } }), h);
    assert.equal(get.status, 405);
    const noRole = await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).setSubject('eve').setIssuer('iss').setAudience('gw').setExpirationTime('10m').sign(signer);
    const forbidden = await handleTicketRequest(request({ method: 'POST', url: '/.gatehouse/tickets?service=chat', headers: { authorization: `Bearer ${noRole}` } }), h);
    assert.equal(forbidden.status, 403);
    assert.ok(h.logLines().some((l) => l.reason === 'ticket_origin_forbidden'), 'audited');
  });

  it('refuses malformed and random tickets with 401', async () => {
    for (const t of ['gt.short', `gt.${randomBytes(32).toString('base64url')}`, 'xyz', `gm1.${'a'.repeat(20)}.${'b'.repeat(43)}`]) {
      const r = await h.admit('chat', { url: `/chat?ticket=${encodeURIComponent(t)}` });
      assert.ok(isRejection(r) && r.status === 401, `${t}: ${JSON.stringify(r)}`);
    }
  });

  it('accepts a backend-minted HMAC ticket once', async () => {
    const exp = Math.floor(Date.now() / 1000) + 20;
    const t = mintTicket(KEY, { svc: 'minted', sub: 'bob', roles: ['r'], exp, jti: randomBytes(16).toString('base64url') });
    const a = await h.admit('minted', { url: `/minted?ticket=${t}` }) as Admission;
    assert.ok(!isRejection(a), JSON.stringify(a));
    assert.equal(a.principal?.id, 'bob');
    const again = await h.admit('minted', { url: `/minted?ticket=${t}` });
    assert.ok(isRejection(again) && again.reason === 'ticket_replayed', JSON.stringify(again));
  });

  it('refuses minted tickets with a wrong key, for another service, expired or living too long', async () => {
    const now = Math.floor(Date.now() / 1000);
    const jti = () => randomBytes(16).toString('base64url');
    const cases: Array<[string, string, number, string]> = [
      ['wrong key', mintTicket('x'.repeat(40), { svc: 'minted', sub: 'bob', exp: now + 20, jti: jti() }), 401, 'ticket_invalid'],
      ['other service', mintTicket(KEY, { svc: 'chat', sub: 'bob', exp: now + 20, jti: jti() }), 403, 'ticket_wrong_service'],
      ['expired', mintTicket(KEY, { svc: 'minted', sub: 'bob', exp: now - 1, jti: jti() }), 401, 'ticket_expired'],
      ['too long', mintTicket(KEY, { svc: 'minted', sub: 'bob', exp: now + 3600, jti: jti() }), 401, 'ticket_invalid'],
      ['short jti', mintTicket(KEY, { svc: 'minted', sub: 'bob', exp: now + 20, jti: 'abc' }), 401, 'ticket_invalid'],
    ];
    for (const [name, t, status, reason] of cases) {
      const r = await h.admit('minted', { url: `/minted?ticket=${t}` });
      assert.ok(isRejection(r), name);
      assert.equal(r.status, status, name);
      assert.equal(r.reason, reason, name);
    }
  });

  it('per_principal 0: one principal may hold any number of unused tickets; left out, the 11th is refused (issue 17, item 6)', async () => {
    const clock = () => 1_000_000;
    const held = async (tickets: Record<string, unknown>): Promise<string[]> => {
      const config = parseConfig({ listen: [{ port: 0 }], auth: { tickets } }, {}).auth.tickets;
      const store = new TicketStore(config, new MemoryTicketVault(1000, clock), new MemorySingleUseIds(100, clock), clock);
      const p = { id: 'a', roles: [], claims: {}, method: 'jwt' };
      const outcomes: string[] = [];
      for (let i = 0; i < 20; i++) {
        const r = await store.issue('chat', null, p);
        outcomes.push('ticket' in r ? 'issued' : r.reason);
      }
      return outcomes;
    };
    assert.deepEqual(await held({ per_principal: 0 }), Array(20).fill('issued'), 'per_principal 0: 20 tickets issued');
    assert.deepEqual(await held({}), [...Array(10).fill('issued'), ...Array(10).fill('owner_full')], 'left out: 10, then refused');
  });

  it('expires issued tickets after their lifetime', async () => {
    let now = 1_000_000;
    const clock = () => now;
    const vault = new MemoryTicketVault(100, clock);
    const store = new TicketStore({ ttl: 30_000, path: '/t', hmac_keys: [], per_principal: 1000 }, vault, new MemorySingleUseIds(100, clock), clock);
    const p = { id: 'a', roles: [], claims: {}, method: 'jwt' };
    const issued = async () => {
      const r = await store.issue('chat', null, p);
      assert.ok('ticket' in r, JSON.stringify(r));
      return r;
    };
    const fresh = await issued();
    const stale = await issued();
    now += 29_999;
    assert.notEqual(typeof await store.consumeIssued(fresh.ticket), 'string', 'valid just before expiry');
    now += 1;
    assert.equal(await store.consumeIssued(stale.ticket), 'expired');
    await issued();
    now += 32_000;
    await issued();
    assert.equal(vault.size, 1, 'expired tickets swept');
  });
});
