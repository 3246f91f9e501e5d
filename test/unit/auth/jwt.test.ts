import assert from 'node:assert/strict';
import { createPrivateKey, sign, type JsonWebKey } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import type { Admission } from '../../../src/admission/types.js';
import { loadKeyFiles } from '../../../src/auth/jwt-keys.js';
import { isRejection, makeHarness, type Harness } from './harness.js';

const ISS = 'https://issuer.test';
const AUD = 'gatehouse';
const dir = mkdtempSync(join(tmpdir(), 'gh-jwt-'));

let rsa: { publicKey: CryptoKey; privateKey: CryptoKey };
let ec: { publicKey: CryptoKey; privateKey: CryptoKey };
let other: { publicKey: CryptoKey; privateKey: CryptoKey };
let rsaPem: string;

async function token(key: CryptoKey, alg: string, claims: Record<string, unknown> = {}, opts: { exp?: string | number; aud?: string; iss?: string; kid?: string; nbf?: number } = {}) {
  const jwt = new SignJWT({ roles: ['reader'], ...claims }).setProtectedHeader({ alg, ...(opts.kid ? { kid: opts.kid } : {}) })
    .setSubject('alice').setIssuer(opts.iss ?? ISS).setAudience(opts.aud ?? AUD).setIssuedAt().setExpirationTime(opts.exp ?? '5m');
  if (opts.nbf !== undefined) jwt.setNotBefore(opts.nbf);
  return jwt.sign(key);
}

function b64(o: unknown) { return Buffer.from(JSON.stringify(o)).toString('base64url'); }

describe('jwt authentication (local keys)', () => {
  let h: Harness;
  before(async () => {
    rsa = await generateKeyPair('RS256', { extractable: true });
    ec = await generateKeyPair('ES256', { extractable: true });
    other = await generateKeyPair('RS256', { extractable: true });
    rsaPem = await exportSPKI(rsa.publicKey);
    writeFileSync(join(dir, 'rsa.pem'), rsaPem);
    writeFileSync(join(dir, 'ec.jwk'), JSON.stringify(await exportJWK(ec.publicKey)));
    h = makeHarness({
      // Refusals below all come from one address; the limiter is tested in basic.test.ts.
      auth: { failures: { per_address: 1000 } },
      services: {
        chat: {
          path: '/chat', type: 'echo',
          auth: { methods: [{ type: 'jwt', from: ['header', 'cookie', 'protocol'], clock_skew: 0, cookie: 'at',
            issuers: [{ issuer: ISS, audience: AUD, algorithms: ['RS256', 'ES256'], key_files: [join(dir, 'rsa.pem'), join(dir, 'ec.jwk')] }] }] },
        },
        q: {
          path: '/q', type: 'echo',
          auth: { methods: [{ type: 'jwt', from: ['query'], issuers: [{ issuer: ISS, audience: AUD, algorithms: ['RS256'], key_files: [join(dir, 'rsa.pem')] }] }] },
        },
        noquery: {
          path: '/nq', type: 'echo',
          auth: { methods: [{ type: 'jwt', issuers: [{ issuer: ISS, audience: AUD, algorithms: ['RS256'], key_files: [join(dir, 'rsa.pem')] }] }] },
        },
      },
    });
  });

  it('admits a valid RS256 bearer token and fills the principal', async () => {
    const t = await token(rsa.privateKey, 'RS256');
    const a = await h.admit('chat', { headers: { authorization: `Bearer ${t}` } }) as Admission;
    assert.ok(!isRejection(a), JSON.stringify(a));
    assert.equal(a.principal?.id, 'alice');
    assert.equal(a.principal?.method, 'jwt');
    assert.deepEqual(a.principal?.roles, ['reader']);
    assert.ok(a.principal!.expiresAt! > Date.now() + 4 * 60_000);
  });

  it('admits a valid ES256 token from a cookie', async () => {
    const t = await token(ec.privateKey, 'ES256');
    const a = await h.admit('chat', { headers: { cookie: `x=1; at=${t}` } });
    assert.ok(!isRejection(a));
  });

  it('takes a token from Sec-WebSocket-Protocol and removes it from the offer', async () => {
    const t = await token(rsa.privateKey, 'RS256');
    const a = await h.admit('chat', { headers: { 'sec-websocket-protocol': `chat.v1, bearer.${t}` } }) as Admission;
    assert.ok(!isRejection(a));
    assert.deepEqual(a.offeredProtocols, ['chat.v1']);
  });

  const refusals: Array<[string, () => Promise<Record<string, string>>, number, string]> = [
    ['expired', async () => ({ authorization: `Bearer ${await token(rsa.privateKey, 'RS256', {}, { exp: Math.floor(Date.now() / 1000) - 10 })}` }), 401, 'jwt_expired'],
    ['wrong audience', async () => ({ authorization: `Bearer ${await token(rsa.privateKey, 'RS256', {}, { aud: 'someone-else' })}` }), 401, 'jwt_wrong_audience'],
    ['unknown issuer', async () => ({ authorization: `Bearer ${await token(rsa.privateKey, 'RS256', {}, { iss: 'https://evil.test' })}` }), 401, 'jwt_unknown_issuer'],
    ['not yet valid', async () => ({ authorization: `Bearer ${await token(rsa.privateKey, 'RS256', {}, { nbf: Math.floor(Date.now() / 1000) + 600 })}` }), 401, 'jwt_not_yet_valid'],
    ['signed by another key', async () => ({ authorization: `Bearer ${await token(other.privateKey, 'RS256')}` }), 401, 'jwt_bad_signature'],
    ['alg none', async () => {
      const now = Math.floor(Date.now() / 1000);
      return { authorization: `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', iss: ISS, aud: AUD, exp: now + 300 })}.` };
    }, 401, 'jwt_alg_not_allowed'],
    ['HS256 signed with the RSA public key (key confusion)', async () => {
      const secret = new TextEncoder().encode(rsaPem);
      return { authorization: `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(secret)}` };
    }, 401, 'jwt_alg_not_allowed'],
    ['signature stripped', async () => {
      const t = await token(rsa.privateKey, 'RS256');
      return { authorization: `Bearer ${t.slice(0, t.lastIndexOf('.') + 1)}` };
    }, 401, 'jwt_bad_signature'],
    ['garbage', async () => ({ authorization: 'Bearer not-a-jwt' }), 401, 'jwt_malformed'],
    ['no exp', async () => ({ authorization: `Bearer ${await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('alice').setIssuer(ISS).setAudience(AUD).sign(rsa.privateKey)}` }), 401, 'jwt_claims_invalid'],
    ['unknown crit header', async () => {
      // jose refuses to make such a token, so sign it by hand.
      const now = Math.floor(Date.now() / 1000);
      const input = `${b64({ alg: 'RS256', crit: ['x-unknown'], 'x-unknown': 1 })}.${b64({ sub: 'alice', iss: ISS, aud: AUD, exp: now + 300 })}`;
      const key = createPrivateKey({ key: await exportJWK(rsa.privateKey) as JsonWebKey, format: 'jwk' });
      return { authorization: `Bearer ${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}` };
    }, 401, 'jwt_malformed'],
    ['two different cookies of the same name', async () => ({ cookie: `at=${await token(rsa.privateKey, 'RS256')}; at=other` }), 401, 'cookie_ambiguous'],
    ['no credentials at all', async () => ({}), 401, 'auth_missing'],
  ];
  for (const [name, headers, status, reason] of refusals) {
    it(`refuses: ${name} → ${status} ${reason}`, async () => {
      const hdrs = await headers();
      const r = await h.admit('chat', { headers: hdrs });
      assert.ok(isRejection(r), 'expected a rejection');
      assert.equal(r.status, status);
      assert.equal(r.reason, reason);
      assert.match(r.headers['WWW-Authenticate'] ?? '', /^Bearer /);
      // The audit line names the reason, never the token.
      const line = h.logLines().reverse().find((l) => l.reason === reason);
      assert.ok(line, 'audit line with the reason');
      const secret = hdrs.authorization?.split(' ')[1] ?? hdrs.cookie;
      if (secret) assert.ok(!h.logText().includes(secret), 'token leaked into the log');
      assert.ok(h.metrics.get('gatehouse_rejections_total', { reason }) >= 1);
    });
  }

  it('uses the query parameter only where configured', async () => {
    const t = await token(rsa.privateKey, 'RS256');
    assert.ok(!isRejection(await h.admit('q', { url: `/q?access_token=${t}` })));
    const r = await h.admit('noquery', { url: `/nq?access_token=${t}` });
    assert.ok(isRejection(r));
    assert.equal(r.reason, 'auth_missing');
  });
});

describe('jwt authentication (JWKS over HTTP)', () => {
  let server: http.Server;
  let jwks: { keys: JWK[] } = { keys: [] };
  let fetches = 0;
  let attackerFetches = 0;
  let port = 0;
  let h: Harness;
  let k1: { publicKey: CryptoKey; privateKey: CryptoKey };
  let k2: { publicKey: CryptoKey; privateKey: CryptoKey };

  before(async () => {
    k1 = await generateKeyPair('ES256', { extractable: true });
    k2 = await generateKeyPair('ES256', { extractable: true });
    jwks = { keys: [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
    server = http.createServer((req, res) => { if (req.url !== '/jwks.json') { attackerFetches++; res.writeHead(404); res.end(); return; } fetches++; res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(jwks)); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    h = makeHarness({
      services: {
        live: {
          path: '/live', type: 'echo',
          auth: { methods: [{ type: 'jwt', issuers: [{ issuer: ISS, audience: AUD, algorithms: ['ES256'], jwks_url: `http://127.0.0.1:${port}/jwks.json`, jwks_cooldown: 0 }] }] },
        },
        dead: {
          path: '/dead', type: 'echo',
          auth: { methods: [{ type: 'jwt', issuers: [{ issuer: ISS, audience: AUD, algorithms: ['ES256'], jwks_url: 'http://127.0.0.1:1/jwks.json', jwks_timeout: '1s' }] }] },
        },
      },
    });
  });
  after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));

  it('caches the key set and picks up a rotated key on an unknown kid', async () => {
    const t1 = await token(k1.privateKey, 'ES256', {}, { kid: 'k1' });
    assert.ok(!isRejection(await h.admit('live', { headers: { authorization: `Bearer ${t1}` } })));
    assert.ok(!isRejection(await h.admit('live', { headers: { authorization: `Bearer ${t1}` } })));
    assert.equal(fetches, 1, 'key set fetched once and cached');

    // The issuer rotates: k2 is published, k1 withdrawn.
    jwks = { keys: [{ ...(await exportJWK(k2.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' }] };
    const t2 = await token(k2.privateKey, 'ES256', {}, { kid: 'k2' });
    const a = await h.admit('live', { headers: { authorization: `Bearer ${t2}` } });
    assert.ok(!isRejection(a), JSON.stringify(a));
    assert.equal(fetches, 2, 'unknown kid caused one refetch');

    // A token naming a kid nobody published is refused.
    const t3 = await token(k1.privateKey, 'ES256', {}, { kid: 'nope' });
    const r = await h.admit('live', { headers: { authorization: `Bearer ${t3}` } });
    assert.ok(isRejection(r));
    assert.equal(r.status, 401);
  });

  it('never fetches keys a token points to (jku, x5u) and ignores an embedded jwk', async () => {
    const attacker = await generateKeyPair('ES256', { extractable: true });
    const t = await new SignJWT({}).setProtectedHeader({
      alg: 'ES256', kid: '../../dev/null', jku: `http://127.0.0.1:${port}/evil-jwks`, x5u: `http://127.0.0.1:${port}/evil-cert`,
      jwk: await exportJWK(attacker.publicKey),
    }).setSubject('mallory').setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(attacker.privateKey);
    const r = await h.admit('live', { headers: { authorization: `Bearer ${t}` } });
    assert.ok(isRejection(r), 'refused');
    assert.equal(r.status, 401);
    assert.equal(attackerFetches, 0, 'no request to a URL named by the token');
  });

  it('answers 503 when the key set cannot be fetched', async () => {
    const t = await token(k1.privateKey, 'ES256', {}, { kid: 'k1' });
    const r = await h.admit('dead', { headers: { authorization: `Bearer ${t}` } });
    assert.ok(isRejection(r));
    assert.equal(r.status, 503);
    assert.equal(r.reason, 'jwt_keys_unavailable');
  });
});

describe('jwt key files naming a kid', () => {
  it('sets the kid of a file\'s one key; refuses a kid for a file of several keys or one that names another', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gh-jwt-kid-'));
    const a = await generateKeyPair('ES256');
    const b = await generateKeyPair('ES256');
    writeFileSync(join(dir, 'one.pem'), await exportSPKI(a.publicKey));
    writeFileSync(join(dir, 'two.pem'), `${await exportSPKI(a.publicKey)}\n${await exportSPKI(b.publicKey)}`);
    writeFileSync(join(dir, 'own.json'), JSON.stringify({ ...(await exportJWK(a.publicKey)), kid: 'own' }));
    assert.deepEqual(loadKeyFiles([{ file: join(dir, 'one.pem'), kid: 'k1' }]).keys.map((k) => k.kid), ['k1']);
    assert.deepEqual(loadKeyFiles([{ file: join(dir, 'one.pem'), kid: undefined }]).keys.map((k) => k.kid), [undefined]);
    assert.throws(() => loadKeyFiles([{ file: join(dir, 'two.pem'), kid: 'k1' }]), /holds 2 keys/);
    assert.throws(() => loadKeyFiles([{ file: join(dir, 'own.json'), kid: 'k1' }]), /names its key "own"/);
  });
});
