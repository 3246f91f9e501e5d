/**
 * The signature check of a compact JWS, done with node:crypto on the calling
 * thread. Keys are still found and imported by jose (JWKS fetching, caching,
 * rotation, `kid` / `kty` / `crv` matching); only the final verify runs here,
 * because WebCrypto's promise-per-operation costs about three times the
 * signature math itself (RS256: ~100 µs through jose vs ~30 µs here), and the
 * handshake benchmark is bound by it.
 *
 * Algorithm-to-key binding is strict: RS and PS algorithms need an RSA key of ≥ 2048 bits,
 * ES ones the matching curve, EdDSA an Ed25519/Ed448 key, HS ones a secret. A key of
 * another type never verifies, whatever the token's header says.
 * test/unit/auth/jws-verify.test.ts compares every verdict with jose's own.
 */
import { createHmac, KeyObject, timingSafeEqual, verify, constants, type webcrypto } from 'node:crypto';

const HASH: Record<string, string> = {
  RS256: 'sha256', RS384: 'sha384', RS512: 'sha512',
  PS256: 'sha256', PS384: 'sha384', PS512: 'sha512',
  ES256: 'sha256', ES384: 'sha384', ES512: 'sha512',
  HS256: 'sha256', HS384: 'sha384', HS512: 'sha512',
};
const CURVE: Record<string, string> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };
const SALT: Record<string, number> = { PS256: 32, PS384: 48, PS512: 64 };

const fromCryptoKey = new WeakMap<webcrypto.CryptoKey, KeyObject>();

/** A jose-resolved CryptoKey as a KeyObject (converted once per key). */
export function keyObjectOf(key: webcrypto.CryptoKey | KeyObject): KeyObject {
  if (key instanceof KeyObject) return key;
  let k = fromCryptoKey.get(key);
  if (!k) {
    k = KeyObject.from(key);
    fromCryptoKey.set(key, k);
  }
  return k;
}

/**
 * True when `signature` (base64url) is a valid `alg` signature of
 * `signingInput` (the ASCII `header.payload`) under `key`.
 */
export function verifyJwsSignature(alg: string, signingInput: string, signature: string, key: KeyObject | Uint8Array): boolean {
  const sig = Buffer.from(signature, 'base64url');
  if (sig.length === 0) return false;
  const data = Buffer.from(signingInput, 'ascii');
  if (alg.startsWith('HS')) {
    if (key instanceof KeyObject) return false;
    const expected = createHmac(HASH[alg], key).update(data).digest();
    return expected.length === sig.length && timingSafeEqual(expected, sig);
  }
  if (!(key instanceof KeyObject) || key.type !== 'public') return false;
  const type = key.asymmetricKeyType;
  try {
    if (alg.startsWith('RS') || alg.startsWith('PS')) {
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (bits < 2048) return false;
      if (alg.startsWith('RS')) return type === 'rsa' && verify(HASH[alg], data, key, sig);
      if (type !== 'rsa' && type !== 'rsa-pss') return false;
      return verify(HASH[alg], data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: SALT[alg] }, sig);
    }
    if (alg.startsWith('ES')) {
      if (type !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== CURVE[alg]) return false;
      return verify(HASH[alg], data, { key, dsaEncoding: 'ieee-p1363' }, sig);
    }
    if (alg === 'EdDSA' || alg === 'Ed25519') {
      if (type !== 'ed25519' && !(alg === 'EdDSA' && type === 'ed448')) return false;
      return verify(null, data, key, sig);
    }
  } catch {
    // A malformed signature (wrong length, bad encoding) is simply not valid.
    return false;
  }
  return false;
}
