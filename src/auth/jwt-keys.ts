/**
 * Where a JWT issuer's verification keys come from: a JWKS URL (jose's remote
 * set: cached, refetched on an unknown `kid` after a cooldown, with a timeout),
 * local PEM / JWK files, or a shared HMAC secret. Token headers never choose a
 * key source: `jku`, `x5u` and embedded `jwk` are ignored.
 */
import { readFileSync } from 'node:fs';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { createLocalJWKSet, createRemoteJWKSet, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from 'jose';
import type { JwtIssuerConfig, JwtKeyFile } from '../config/auth.js';
import { ConfigError } from '../errors.js';

/** A shared secret, or what picks the key for a token's header (a remote set, or the local keys). */
export type JwtKeySource = ((header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>) | Uint8Array;

/** One remote set per URL and options, shared by every service that trusts the issuer. */
export class JwksRegistry {
  private readonly remote = new Map<string, ReturnType<typeof createRemoteJWKSet>>();

  keysFor(issuer: JwtIssuerConfig): JwtKeySource {
    if (issuer.secret !== undefined) return new TextEncoder().encode(issuer.secret);
    if (issuer.jwks_url !== undefined) {
      const key = `${issuer.jwks_url} ${issuer.jwks_timeout} ${issuer.jwks_cache} ${issuer.jwks_cooldown}`;
      let set = this.remote.get(key);
      if (!set) {
        set = createRemoteJWKSet(new URL(issuer.jwks_url), {
          timeoutDuration: issuer.jwks_timeout,
          cacheMaxAge: issuer.jwks_cache,
          cooldownDuration: issuer.jwks_cooldown,
        });
        this.remote.set(key, set);
      }
      return set;
    }
    return localKeys(loadKeyFiles(issuer.key_files ?? []));
  }
}

/**
 * Picks among local keys: the keys with the `kid` a token names, else — when
 * none has it — the keys without a `kid` of their own (a PEM file says none;
 * most identity providers put one in every token). A token without `kid`
 * may use any key, as jose decides.
 */
export function localKeys(set: JSONWebKeySet): (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey> {
  const byKid = createLocalJWKSet(set);
  const unnamed = set.keys.filter((k) => k.kid === undefined);
  const anyKid = unnamed.length > 0 ? createLocalJWKSet({ keys: unnamed }) : undefined;
  return async (header, token) => {
    try {
      return await byKid(header, token);
    } catch (err) {
      if (!anyKid || header.kid === undefined || (err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      return anyKid({ ...header, kid: undefined }, token);
    }
  };
}

/** Reads PEM public keys / certificates and JWK / JWKS JSON files into one public JWKS. */
export function loadKeyFiles(files: JwtKeyFile[]): JSONWebKeySet {
  const keys: JWK[] = [];
  for (const { file, kid } of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read JWT key file ${file}: ${(err as Error).message}`, [], { cause: err });
    }
    let found: JWK[];
    try {
      found = parseKeyText(text);
    } catch (err) {
      throw new ConfigError(`JWT key file ${file} holds no usable public key: ${(err as Error).message}`, [], { cause: err });
    }
    if (kid !== undefined) {
      if (found.length !== 1) throw new ConfigError(`JWT key file ${file} holds ${found.length} keys; a kid names one`);
      if (found[0].kid !== undefined && found[0].kid !== kid) throw new ConfigError(`JWT key file ${file} names its key ${JSON.stringify(found[0].kid)}, not ${JSON.stringify(kid)}`);
      found = [{ ...found[0], kid }];
    }
    keys.push(...found);
  }
  if (keys.length === 0) throw new ConfigError('no JWT verification keys configured');
  return { keys };
}

function parseKeyText(text: string): JWK[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    const json = JSON.parse(trimmed) as JWK | JSONWebKeySet;
    const list = 'keys' in json && Array.isArray(json.keys) ? json.keys : [json as JWK];
    // Accept only public members: a file with a private key is a mistake worth refusing.
    for (const k of list) if ('d' in k || k.kty === 'oct') throw new Error('private or symmetric key in a public key file');
    return list;
  }
  const out: JWK[] = [];
  for (const block of trimmed.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? []) {
    if (block.includes('PRIVATE KEY')) throw new Error('private key in a public key file');
    const key = block.includes('CERTIFICATE') ? new X509Certificate(block).publicKey : createPublicKey(block);
    out.push(key.export({ format: 'jwk' }) as JWK);
  }
  if (out.length === 0) throw new Error('no PEM block or JWK found');
  return out;
}
