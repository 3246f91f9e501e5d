/**
 * The verified identity, handed to a WebSocket backend. The client's own
 * credentials (Authorization, Cookie, credential query parameters, protocol
 * carriers) stop at the gateway unless `identity.pass_credentials` is set;
 * what the backend gets instead is either
 *  - headers: X-Gatehouse-User, X-Gatehouse-Roles, X-Gatehouse-Auth-Method,
 *    X-Gatehouse-Credential-Expires, X-Gatehouse-Connection (values
 *    percent-encoded UTF-8), or
 *  - X-Gatehouse-Identity: a short-lived JWT signed by the gateway's key
 *    (docs/authentication.md shows how a backend verifies it).
 * Client-sent headers starting with X-Gatehouse- are never forwarded: only
 * the gateway asserts identity.
 */
import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { Admission } from '../admission/types.js';
import type { IdentityConfig } from '../config/auth.js';
import type { ServiceConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';

export const IDENTITY_HEADER_PREFIX = 'x-gatehouse-';
export const IDENTITY_JWT_HEADER = 'x-gatehouse-identity';
/** Request headers that carry client credentials. */
export const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'] as const;

interface SigningKey {
  key: KeyObject;
  alg: 'RS256' | 'ES256' | 'ES384' | 'EdDSA';
}

const signingKeys = new Map<string, SigningKey>();

/** Loads (once) the identity signing key; throws ConfigError when it is unusable. */
export function loadIdentityKey(file: string): SigningKey {
  let k = signingKeys.get(file);
  if (k) return k;
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`cannot load identity signing key ${file}: ${(err as Error).message}`, [], { cause: err });
  }
  let alg: SigningKey['alg'];
  if (key.asymmetricKeyType === 'rsa') alg = 'RS256';
  else if (key.asymmetricKeyType === 'ed25519') alg = 'EdDSA';
  else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') alg = 'ES256';
  else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1') alg = 'ES384';
  else throw new ConfigError(`identity signing key ${file}: use RSA, EC P-256 / P-384 or Ed25519`);
  k = { key, alg };
  signingKeys.set(file, k);
  return k;
}

/** Signs a compact JWS synchronously (node:crypto), so the headers can be built without awaiting. */
export function signJwt(payload: Record<string, unknown>, signing: SigningKey, kid?: string): string {
  const header: Record<string, string> = { alg: signing.alg, typ: 'JWT' };
  if (kid !== undefined) header.kid = kid;
  const input = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  let sig: Buffer;
  switch (signing.alg) {
    case 'RS256': sig = sign('sha256', Buffer.from(input), signing.key); break;
    case 'ES256': sig = sign('sha256', Buffer.from(input), { key: signing.key, dsaEncoding: 'ieee-p1363' }); break;
    case 'ES384': sig = sign('sha384', Buffer.from(input), { key: signing.key, dsaEncoding: 'ieee-p1363' }); break;
    case 'EdDSA': sig = sign(null, Buffer.from(input), signing.key); break;
  }
  return `${input}.${sig.toString('base64url')}`;
}

const enc = (s: string): string => encodeURIComponent(s);

/**
 * The headers to add to the backend request for this connection: the identity
 * (as headers or a JWT) and, only when `identity.pass_credentials` is set, the
 * client's Authorization and Cookie. Combine with `stripClientCredentials` on
 * whatever client headers the backend request copies.
 */
export function backendIdentityHeaders(admission: Admission, serviceConfig: ServiceConfig): Record<string, string> {
  const identity: IdentityConfig = serviceConfig.identity;
  const out: Record<string, string> = {};
  if (identity.pass_credentials) {
    for (const name of CREDENTIAL_HEADERS) {
      const v = admission.request?.headers[name];
      if (typeof v === 'string') out[name] = v;
    }
  }
  const p = admission.principal;
  if (!p || identity.mode === 'none') return out;
  if (identity.mode === 'headers') {
    out['x-gatehouse-user'] = enc(p.id);
    if (p.roles.length > 0) out['x-gatehouse-roles'] = p.roles.map(enc).join(',');
    out['x-gatehouse-auth-method'] = p.method;
    if (p.expiresAt !== undefined) out['x-gatehouse-credential-expires'] = String(Math.floor(p.expiresAt / 1000));
    out['x-gatehouse-connection'] = admission.id;
    return out;
  }
  const signing = loadIdentityKey(identity.signing_key_file!);
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: identity.issuer,
    aud: identity.audience ?? serviceConfig.name,
    sub: p.id,
    roles: p.roles,
    amr: [p.method],
    iat: now,
    exp: now + Math.max(1, Math.ceil(identity.ttl / 1000)),
    jti: randomBytes(16).toString('base64url'),
    gh_conn: admission.id,
  };
  if (admission.origin) payload.origin = admission.origin;
  if (p.expiresAt !== undefined) payload.cred_exp = Math.floor(p.expiresAt / 1000);
  out[IDENTITY_JWT_HEADER] = signJwt(payload, signing, identity.key_id);
  return out;
}

/**
 * A copy of client request headers safe to copy toward the backend: without
 * credentials (unless passed on purpose) and without any X-Gatehouse-* header
 * the client made up.
 */
export function stripClientCredentials(headers: IncomingHttpHeaders, serviceConfig: ServiceConfig): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    const n = name.toLowerCase();
    if (n.startsWith(IDENTITY_HEADER_PREFIX)) continue;
    if (!serviceConfig.identity.pass_credentials && (CREDENTIAL_HEADERS as readonly string[]).includes(n)) continue;
    out[n] = value;
  }
  return out;
}

/** Query parameters that carry credentials for this service (to drop from a forwarded URL). */
export function credentialQueryParams(serviceConfig: ServiceConfig): string[] {
  const names: string[] = [];
  for (const m of serviceConfig.auth?.methods ?? []) {
    if (m.type === 'jwt' && m.from.includes('query')) names.push(m.query_param);
    if (m.type === 'ticket') names.push(m.query_param);
  }
  return names;
}

/** `url` (path + query) without the credential query parameters. */
export function stripCredentialQuery(url: string, serviceConfig: ServiceConfig): string {
  const q = url.indexOf('?');
  const names = credentialQueryParams(serviceConfig);
  if (q < 0 || names.length === 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const n of names) params.delete(n);
  const rest = params.toString();
  return rest ? `${url.slice(0, q)}?${rest}` : url.slice(0, q);
}
