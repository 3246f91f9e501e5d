import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import type { Admission } from '../../../src/admission/types.js';
import { backendIdentityHeaders, stripClientCredentials, stripCredentialQuery } from '../../../src/auth/identity.js';
import { mintTicket } from '../../../src/auth/ticket.js';
import { isRejection, makeHarness } from './harness.js';

const KEY = 'm'.repeat(40);
const dir = mkdtempSync(join(tmpdir(), 'gh-identity-'));

function keyFiles(type: 'rsa' | 'ec' | 'ed25519') {
  const { privateKey, publicKey } = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
  const file = join(dir, `${type}.pem`);
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return { file, jwk: publicKey.export({ format: 'jwk' }) as JWK };
}

async function admitted(identity: Record<string, unknown>, headers: Record<string, string> = {}) {
  const h = makeHarness({
    auth: { tickets: { hmac_keys: [KEY] } },
    services: { svc: { path: '/svc', type: 'echo', auth: { methods: [{ type: 'ticket' }] }, identity } },
  });
  const t = mintTicket(KEY, { svc: 'svc', sub: 'zoë@example', roles: ['a b', 'c'], exp: Math.floor(Date.now() / 1000) + 20, jti: randomBytes(16).toString('base64url'), session_exp: 2_000_000_000 });
  const a = await h.admit('svc', { url: `/svc?ticket=${t}&room=1`, headers });
  assert.ok(!isRejection(a), JSON.stringify(a));
  return { a: a as Admission, svc: h.service('svc'), ticket: t };
}

describe('identity to backends', () => {
  it('headers mode: percent-encoded user and roles, method, expiry, connection id', async () => {
    const { a, svc } = await admitted({}, { authorization: 'Bearer client-secret', cookie: 'sid=client-cookie' });
    const h = backendIdentityHeaders(a, svc);
    assert.equal(h['x-gatehouse-user'], 'zo%C3%AB%40example');
    assert.equal(decodeURIComponent(h['x-gatehouse-user']), 'zoë@example');
    assert.equal(h['x-gatehouse-roles'], 'a%20b,c');
    assert.equal(h['x-gatehouse-auth-method'], 'ticket');
    assert.equal(h['x-gatehouse-credential-expires'], '2000000000');
    assert.equal(h['x-gatehouse-connection'], a.id);
    assert.ok(!('authorization' in h) && !('cookie' in h), 'client credentials not passed by default');
  });

  it('strips client credentials, forged identity headers and credential query parameters', async () => {
    const { a, svc, ticket } = await admitted({});
    const headers = { authorization: 'Bearer x', cookie: 'sid=1', 'x-gatehouse-user': 'admin', 'user-agent': 'ua', origin: 'https://app' };
    assert.deepEqual(stripClientCredentials(headers, svc), { 'user-agent': 'ua', origin: 'https://app' });
    assert.equal(stripCredentialQuery(a.request!.url, svc), '/svc?room=1');
    assert.ok(!stripCredentialQuery(a.request!.url, svc).includes(ticket));
  });

  it('pass_credentials forwards Authorization and Cookie', async () => {
    const { a, svc } = await admitted({ pass_credentials: true }, { authorization: 'Bearer client', cookie: 'sid=1' });
    const h = backendIdentityHeaders(a, svc);
    assert.equal(h.authorization, 'Bearer client');
    assert.equal(h.cookie, 'sid=1');
    assert.deepEqual(stripClientCredentials({ authorization: 'Bearer client', cookie: 'sid=1' }, svc), { authorization: 'Bearer client', cookie: 'sid=1' });
  });

  for (const [type, alg] of [['rsa', 'RS256'], ['ec', 'ES256'], ['ed25519', 'EdDSA']] as const) {
    it(`jwt mode: a ${alg} identity JWT a backend verifies with jose`, async () => {
      const { file, jwk } = keyFiles(type);
      const { a, svc } = await admitted({ mode: 'jwt', signing_key_file: file, key_id: 'gw-1', ttl: '30s' });
      const h = backendIdentityHeaders(a, svc);
      const token = h['x-gatehouse-identity'];
      assert.ok(token, 'identity header');
      const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet({ keys: [{ ...jwk, kid: 'gw-1' }] }), {
        issuer: 'gatehouse', audience: 'svc', algorithms: [alg],
      });
      assert.equal(protectedHeader.kid, 'gw-1');
      assert.equal(payload.sub, 'zoë@example');
      assert.deepEqual(payload.roles, ['a b', 'c']);
      assert.deepEqual(payload.amr, ['ticket']);
      assert.equal(payload.gh_conn, a.id);
      assert.ok(payload.exp! - payload.iat! === 30, 'lifetime');
    });
  }

  it('refuses at start an unusable signing key', () => {
    writeFileSync(join(dir, 'bad.pem'), 'not a key');
    assert.throws(() => makeHarness({ services: { s: { path: '/s', type: 'echo', identity: { mode: 'jwt', signing_key_file: join(dir, 'bad.pem') } } } }), { code: 'GH_CONFIG_INVALID' });
  });
});
