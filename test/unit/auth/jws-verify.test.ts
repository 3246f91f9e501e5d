/**
 * The node:crypto signature check and the claims check must agree with jose
 * on every token: valid ones, tampered ones, and keys of the wrong kind.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { compactVerify, generateKeyPair, generateSecret, jwtVerify, SignJWT, type CryptoKey } from 'jose';
import { checkClaims } from '../../../src/auth/jwt.js';
import { keyObjectOf, verifyJwsSignature } from '../../../src/auth/jws-verify.js';

const ALGS = ['RS256', 'RS384', 'PS256', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'HS256', 'HS512'] as const;

async function keysFor(alg: string): Promise<{ sign: CryptoKey | Uint8Array; verify: CryptoKey | Uint8Array }> {
  if (alg.startsWith('HS')) {
    const secret = randomBytes(64);
    return { sign: secret, verify: secret };
  }
  const kp = await generateKeyPair(alg, { extractable: true });
  return { sign: kp.privateKey, verify: kp.publicKey };
}

async function joseSays(token: string, key: CryptoKey | Uint8Array, alg: string): Promise<boolean> {
  try { await compactVerify(token, key, { algorithms: [alg] }); return true; } catch { return false; }
}

function oursSays(token: string, key: CryptoKey | Uint8Array, alg: string): boolean {
  const [h, p, s] = token.split('.');
  return verifyJwsSignature(alg, `${h}.${p}`, s, key instanceof Uint8Array ? key : keyObjectOf(key));
}

function flip(s: string, i: number): string {
  const c = s[i] === 'A' ? 'B' : 'A';
  return s.slice(0, i) + c + s.slice(i + 1);
}

describe('signature verification agrees with jose', () => {
  for (const alg of ALGS) {
    it(alg, async () => {
      const own = await keysFor(alg);
      const other = await keysFor(alg);
      const token = await new SignJWT({ n: 1 }).setProtectedHeader({ alg }).setExpirationTime('5m').sign(own.sign as CryptoKey);
      const [h, p, s] = token.split('.');
      const variants = [
        token,
        `${h}.${flip(p, 3)}.${s}`,                 // payload changed
        `${h}.${p}.${flip(s, 5)}`,                 // signature changed
        `${h}.${p}.${s.slice(0, -4)}`,             // signature truncated
        `${h}.${p}.`,                              // signature stripped
        `${h}.${p}.${s}AAAA`,                      // signature extended
      ];
      for (const v of variants) {
        for (const key of [own.verify, other.verify]) {
          assert.equal(oursSays(v, key, alg), await joseSays(v, key, alg), `${alg} ${v === token ? 'original' : 'variant'}`);
        }
      }
      assert.equal(oursSays(token, own.verify, alg), true, 'the genuine token verifies');
    });
  }

  it('never verifies with a key of another kind than the algorithm (no confusion)', async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const ec384 = await generateKeyPair('ES384', { extractable: true });
    const ed = await generateKeyPair('EdDSA', { extractable: true });
    const t = { RS: await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey),
      ES: await new SignJWT({}).setProtectedHeader({ alg: 'ES256' }).sign(ec.privateKey) };
    const [rh, rp, rs] = t.RS.split('.');
    const [eh, ep, es] = t.ES.split('.');
    assert.equal(verifyJwsSignature('PS256', `${rh}.${rp}`, rs, keyObjectOf(rsa.publicKey)), false, 'RS signature is not PS');
    assert.equal(verifyJwsSignature('ES256', `${rh}.${rp}`, rs, keyObjectOf(ec.publicKey)), false);
    assert.equal(verifyJwsSignature('ES384', `${eh}.${ep}`, es, keyObjectOf(ec384.publicKey)), false, 'curve must match the algorithm');
    assert.equal(verifyJwsSignature('ES256', `${eh}.${ep}`, es, keyObjectOf(ed.publicKey)), false);
    assert.equal(verifyJwsSignature('EdDSA', `${eh}.${ep}`, es, keyObjectOf(ec.publicKey)), false);
    assert.equal(verifyJwsSignature('HS256', `${rh}.${rp}`, rs, keyObjectOf(rsa.publicKey)), false, 'HMAC never with a public key');
    assert.equal(verifyJwsSignature('RS256', `${rh}.${rp}`, rs, new Uint8Array(32)), false, 'RSA never with a secret');
    assert.equal(verifyJwsSignature('none', `${rh}.${rp}`, rs, keyObjectOf(rsa.publicKey)), false);
    assert.equal(verifyJwsSignature('RS256', `${rh}.${rp}`, rs, keyObjectOf(rsa.privateKey)), false, 'only public keys');
    // jose refuses to sign with a 1024-bit key, so sign by hand: the verdict must still be no.
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const input = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}`;
    const weakSig = sign('sha256', Buffer.from(input), small.privateKey).toString('base64url');
    assert.equal(verifyJwsSignature('RS256', input, weakSig, small.publicKey), false, 'RSA below 2048 bits');
  });
});

describe('claims agree with jose', () => {
  it('on exp, nbf, iat, aud and iss around the clock skew', async () => {
    const key = await generateSecret('HS256', { extractable: true });
    const now = Math.floor(Date.now() / 1000);
    const issuer = { issuer: 'iss', audience: ['a', 'b'], algorithms: ['HS256'] } as never;
    const claimSets: Array<Record<string, unknown>> = [];
    for (const exp of [undefined, 'x', now - 100, now - 31, now - 30, now - 29, now, now + 100]) {
      for (const nbf of [undefined, now + 100, now + 31, now + 30, now - 5, 'x']) {
        for (const aud of ['a', ['x', 'b'], 'c', [], undefined]) {
          claimSets.push({ iss: 'iss', exp, nbf, aud });
        }
      }
    }
    claimSets.push({ iss: 'other', exp: now + 100, aud: 'a' }, { iss: 'iss', exp: now + 100, aud: 'a', iat: 'yesterday' });
    for (const claims of claimSets) {
      const clean = Object.fromEntries(Object.entries(claims).filter(([, v]) => v !== undefined));
      const token = await new SignJWT(clean).setProtectedHeader({ alg: 'HS256' }).sign(key);
      let jose = true;
      try {
        await jwtVerify(token, key, { issuer: 'iss', audience: ['a', 'b'], algorithms: ['HS256'], clockTolerance: 30, requiredClaims: ['exp'], currentDate: new Date(now * 1000) });
      } catch { jose = false; }
      const ours = checkClaims(clean, issuer, 30_000, now * 1000) === undefined;
      assert.equal(ours, jose, JSON.stringify(clean));
    }
  });
});
