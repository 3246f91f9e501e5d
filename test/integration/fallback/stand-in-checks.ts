/**
 * Stand-ins for the admission and authentication issues' checks (origin
 * allowlist, cookie / Bearer authentication with a 401 challenge) until those
 * land on main. They sit in the real CHECK_FACTORIES list, so the real
 * pipeline runs them for the WebSocket and the fallback alike.
 */
import { CHECK_FACTORIES } from '../../../src/admission/checks.js';
import { Rejection, type AdmissionCheck } from '../../../src/admission/types.js';
import { serializeOrigin } from '../../../src/fallback/origin.js';

export interface StandInPolicy {
  origins: string[];
  /** credential → principal id; a credential is `Bearer <token>` or `cookie:<name>=<value>` */
  users: Record<string, { id: string; expiresAt?: number }>;
}

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
  CHECK_FACTORIES.push(() => originCheck, () => authCheck, () => subprotocolCheck);
}
