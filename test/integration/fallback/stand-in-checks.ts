/**
 * Stand-ins for the admission and authentication issues' checks (origin
 * allowlist, subprotocol choice, cookie / Bearer authentication with a 401
 * challenge) where those are not on this branch yet. They sit in the real
 * CHECK_FACTORIES list, so the real pipeline runs them for the WebSocket and
 * the fallback alike. Once the admission module is here (the schema knows
 * `origins`), its real origin and subprotocol checks are used instead, through
 * the service keys `originKeys()` returns.
 */
import { CHECK_FACTORIES } from '../../../src/checks.js';
import { policyServiceFields } from '../../../src/config/policy.js';
import { limitsSchema } from '../../../src/config/limits.js';
import { Rejection, type AdmissionCheck } from '../../../src/admission/types.js';
import { serializeOrigin } from '../../../src/front/fallback-origin.js';

export interface StandInPolicy {
  origins: string[];
  /** credential → principal id; a credential is `Bearer <token>` or `cookie:<name>=<value>` */
  users: Record<string, { id: string; expiresAt?: number }>;
}

/** True when the admission issue's origin and subprotocol checks are on this branch. */
export const REAL_ORIGIN_CHECK = 'origins' in policyServiceFields;

/** Reason codes an origin refusal may carry (the stand-in's, or the real check's). */
export const ORIGIN_REFUSALS = ['origin_forbidden', 'origin_not_allowed', 'origin_null', 'origin_malformed', 'origin_missing'];

/** Service keys that give a service this origin and subprotocol policy under the real checks ({} under the stand-ins). */
export function originKeys(opts: { origins: string[]; allowMissing?: boolean; subprotocols?: string[] }): Record<string, unknown> {
  if (!REAL_ORIGIN_CHECK) return {};
  return { origins: opts.origins, allow_missing_origin: opts.allowMissing ?? false, ...(opts.subprotocols ? { subprotocols: opts.subprotocols } : {}) };
}

/**
 * Root `limits` that lift the handshake and per-connection rate limits where the
 * schema has them: these tests open many sessions from 127.0.0.1 and push
 * 10,000 messages through one (those limits have tests of their own).
 */
export const TEST_LIMITS: Record<string, unknown> = Object.fromEntries(Object.entries({
  handshake_rate: 1_000_000,
  handshake_burst: 1_000_000,
  message_rate: 100_000_000,
  byte_rate: '1GiB',
}).filter(([k]) => k in limitsSchema.shape));

export function installStandInChecks(policy: StandInPolicy): void {
  const originCheck: AdmissionCheck = {
    name: 'origin (stand-in)',
    check(ctx) {
      const origin = serializeOrigin(ctx.request.headers.origin);
      if (origin === 'invalid' || origin === null || !policy.origins.includes(origin)) return new Rejection(403, 'origin_forbidden');
      ctx.origin = origin;
      return undefined;
    },
  };
  const authCheck: AdmissionCheck = {
    name: 'authenticate (stand-in)',
    check(ctx) {
      const auth = ctx.request.headers.authorization;
      const cookies = String(ctx.request.headers.cookie ?? '').split(/;\s*/).filter(Boolean).map((c) => `cookie:${c}`);
      for (const cred of [auth, ...cookies]) {
        const user = cred ? policy.users[cred] : undefined;
        if (user) { ctx.principal = { id: user.id, roles: [], claims: {}, method: 'stand-in', expiresAt: user.expiresAt }; return undefined; }
      }
      return new Rejection(401, auth ? 'invalid_credentials' : 'missing_credentials', undefined, { 'WWW-Authenticate': 'Bearer realm="gatehouse"' });
    },
  };
  const subprotocolCheck: AdmissionCheck = {
    name: 'subprotocol (stand-in)',
    check(ctx) {
      const offered = String(ctx.request.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
      ctx.offeredProtocols = offered;
      ctx.protocol = offered.includes('chat.v1') ? 'chat.v1' : '';
      return undefined;
    },
  };
  if (REAL_ORIGIN_CHECK) CHECK_FACTORIES.push(() => authCheck);
  else CHECK_FACTORIES.push(() => originCheck, () => authCheck, () => subprotocolCheck);
}
