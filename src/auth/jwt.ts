/**
 * JWT bearer authentication with jose. The token comes from `Authorization:
 * Bearer`, a named cookie, a `Sec-WebSocket-Protocol` entry under a prefix
 * (browsers cannot set headers; the entry is removed from the offer so it is
 * never echoed), or — only when listed — a query parameter.
 *
 * The unverified `iss` picks one configured issuer; that issuer's algorithm
 * allow-list, audience and keys then decide. `exp` is required: a connection
 * must not outlive its token (expiry.ts closes it at `exp` + skew + grace).
 */
import type { CryptoKey, JWSHeaderParameters } from 'jose';
import type { AdmissionContext, Principal, Rejection } from '../admission/types.js';
import type { JwtIssuerConfig, JwtMethodConfig } from '../config/auth.js';
import { findAuthorization, findCookie, findQuery, takeProtocolCredential } from './credentials.js';
import type { JwksRegistry, JwtKeySource } from './jwt-keys.js';
import { keyObjectOf, verifyJwsSignature } from './jws-verify.js';
import { unauthorized, unavailable } from './rejections.js';
import { NONE, type AuthOutcome, type Authenticator } from './types.js';

const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The token and where it was (a query or subprotocol token is the opening request's alone). */
type Found = { token: string; carrier: 'headers' | 'request' } | { refused: Rejection } | undefined;

export class JwtAuthenticator implements Authenticator {
  readonly method = 'jwt';
  readonly challenge = 'Bearer realm="gatehouse"';
  private readonly issuers = new Map<string, { config: JwtIssuerConfig; keys: JwtKeySource }>();

  constructor(private readonly config: JwtMethodConfig, registry: JwksRegistry) {
    for (const issuer of config.issuers) this.issuers.set(issuer.issuer, { config: issuer, keys: registry.keysFor(issuer) });
  }

  private invalid(reason: string, detail?: string): AuthOutcome {
    return { kind: 'refused', rejection: unauthorized(reason, 'Bearer realm="gatehouse", error="invalid_token"', detail), failed: true };
  }

  /** The token from the first configured source that has one. A protocol carrier is always removed. */
  private find(ctx: AdmissionContext): Found {
    const fromProtocol = this.config.from.includes('protocol') ? takeProtocolCredential(ctx, this.config.protocol_prefix) : undefined;
    for (const source of this.config.from) {
      switch (source) {
        case 'header': {
          const auth = findAuthorization(ctx.request);
          if (auth.kind === 'found' && auth.scheme === 'bearer') return { token: auth.value, carrier: 'headers' };
          break;
        }
        case 'cookie': {
          const c = findCookie(ctx.request, this.config.cookie);
          if (c.kind === 'ambiguous') return { refused: unauthorized('cookie_ambiguous', this.challenge) };
          if (c.kind === 'found') return { token: c.value, carrier: 'headers' };
          break;
        }
        case 'protocol':
          if (fromProtocol !== undefined) return { token: fromProtocol, carrier: 'request' };
          break;
        case 'query': {
          const q = findQuery(ctx.request, this.config.query_param);
          if (q.kind === 'ambiguous') return { refused: unauthorized('query_token_ambiguous', this.challenge) };
          if (q.kind === 'found') return { token: q.value, carrier: 'request' };
          break;
        }
      }
    }
    return undefined;
  }

  async authenticate(ctx: AdmissionContext): Promise<AuthOutcome> {
    const found = this.find(ctx);
    if (!found) return NONE;
    if ('refused' in found) return { kind: 'refused', rejection: found.refused, failed: true };
    const token = found.token;
    if (token.length > this.config.max_length || !JWS_COMPACT.test(token)) return this.invalid('jwt_malformed');

    const [h64, p64, s64] = token.split('.');
    const header = parseSegment(h64);
    const payload = parseSegment(p64);
    if (!header || !payload) return this.invalid('jwt_malformed');
    // We implement no JWS extension, so any critical one is unknown to us (RFC 7515 §4.1.11).
    if (header.crit !== undefined) return this.invalid('jwt_malformed');
    const issuer = typeof payload.iss === 'string' ? this.issuers.get(payload.iss) : undefined;
    if (!issuer) return this.invalid('jwt_unknown_issuer');
    const alg = header.alg;
    if (typeof alg !== 'string' || !(issuer.config.algorithms as string[]).includes(alg)) return this.invalid('jwt_alg_not_allowed');

    const signingInput = `${h64}.${p64}`;
    let verified = false;
    if (issuer.keys instanceof Uint8Array) {
      verified = verifyJwsSignature(alg, signingInput, s64, issuer.keys);
    } else {
      try {
        // jose picks the key (kid, kty, crv, rotation of a remote set); node:crypto checks the signature.
        const key = await issuer.keys(header as JWSHeaderParameters, { protected: h64, payload: p64, signature: s64 });
        verified = verifyJwsSignature(alg, signingInput, s64, keyObjectOf(key));
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') {
          for await (const candidate of err as AsyncIterable<CryptoKey>) {
            if (verifyJwsSignature(alg, signingInput, s64, keyObjectOf(candidate))) { verified = true; break; }
          }
        } else {
          const reason = joseReason(err);
          if (reason === 'jwt_keys_unavailable') return { kind: 'refused', rejection: unavailable(reason), failed: false };
          // Which kid was unknown tells an operator which key to configure (a token's kid is no secret).
          return this.invalid(reason, reason === 'jwt_unknown_key' ? `kid ${printable(header.kid)}` : undefined);
        }
      }
    }
    if (!verified) return this.invalid('jwt_bad_signature');
    const claimProblem = checkClaims(payload, issuer.config, this.config.clock_skew);
    if (claimProblem) return this.invalid(claimProblem);

    const id = payload[this.config.subject_claim];
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) return this.invalid('jwt_no_subject');
    const principal: Principal = {
      id,
      roles: rolesFrom(payload[this.config.roles_claim]),
      claims: payload as Record<string, unknown>,
      // The moment the gateway itself would stop accepting this token.
      expiresAt: (payload.exp as number) * 1000 + this.config.clock_skew,
      method: 'jwt',
      carrier: found.carrier,
    };
    return { kind: 'ok', principal };
  }
}

/** A base64url segment holding a JSON object, or undefined. */
function parseSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The registered claims, as RFC 7519 §4.1 and jose's jwtVerify check them:
 * `iss` exact, `aud` one of the accepted audiences, `exp` required and in the
 * future, `nbf` not in the future, `iat` a number — each with `skew` tolerance.
 * Returns the reason code of the first problem.
 */
export function checkClaims(payload: Record<string, unknown>, issuer: JwtIssuerConfig, skewMs: number, nowMs = Date.now()): string | undefined {
  const now = Math.floor(nowMs / 1000);
  const tolerance = skewMs / 1000;
  if (payload.iss !== issuer.issuer) return 'jwt_unknown_issuer';
  const aud = payload.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  if (!audiences.some((a) => typeof a === 'string' && issuer.audience.includes(a))) return 'jwt_wrong_audience';
  const { exp, nbf, iat } = payload;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return 'jwt_claims_invalid';
  if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf))) return 'jwt_claims_invalid';
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) return 'jwt_claims_invalid';
  if (exp <= now - tolerance) return 'jwt_expired';
  if (nbf !== undefined && nbf > now + tolerance) return 'jwt_not_yet_valid';
  return undefined;
}

export function rolesFrom(claim: unknown): string[] {
  if (typeof claim === 'string') return claim.split(/\s+/).filter(Boolean);
  if (Array.isArray(claim)) return claim.filter((r): r is string => typeof r === 'string');
  return [];
}

/** jose's error codes → our stable reason codes. */
export function joseReason(err: unknown): string {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'ERR_JWT_EXPIRED': return 'jwt_expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
      const claim = (err as { claim?: string }).claim;
      if (claim === 'nbf' || claim === 'iat') return 'jwt_not_yet_valid';
      if (claim === 'aud') return 'jwt_wrong_audience';
      if (claim === 'iss') return 'jwt_unknown_issuer';
      return 'jwt_claims_invalid';
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return 'jwt_bad_signature';
    case 'ERR_JWKS_NO_MATCHING_KEY': return 'jwt_unknown_key';
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return 'jwt_alg_not_allowed';
    case 'ERR_JWKS_TIMEOUT': return 'jwt_keys_unavailable';
    case 'ERR_JWKS_INVALID': return 'jwt_keys_unavailable';
    case 'ERR_JOSE_GENERIC': return 'jwt_keys_unavailable';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
    case 'ERR_JWK_INVALID':
      return 'jwt_malformed';
    default:
      // A failed JWKS fetch surfaces as fetch's own TypeError or an abort, without a jose code.
      if (code === undefined && err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError' || /fetch/i.test(err.message))) {
        return 'jwt_keys_unavailable';
      }
      return 'jwt_invalid';
  }
}

/** A header value for a log line: a JSON string of at most 64 printable ASCII characters. */
function printable(value: unknown): string {
  if (value === undefined) return '(none)';
  return JSON.stringify(String(value).slice(0, 64).replace(/[^\x20-\x7e]/g, '?'));
}
