/**
 * Per-service authorization: once authenticated, a principal may use the
 * service when its id is listed, or it has a listed role, or one of its
 * claims has a listed value. Otherwise 403. The decision is keyed to the
 * service the router resolved — never to anything the client says.
 */
import type { CheckFactory, AdmissionCheck, Principal } from '../admission/types.js';
import type { AuthorizeConfig } from '../config/auth.js';
import { ConfigError } from '../errors.js';
import { forbidden, unauthorized } from './rejections.js';

/** True when the rules let `principal` in. Empty rules admit every authenticated principal. */
export function isAuthorized(principal: Principal, rules: AuthorizeConfig): boolean {
  const claimRules = Object.entries(rules.claims);
  if (rules.users.length === 0 && rules.roles.length === 0 && claimRules.length === 0) return true;
  if (rules.users.includes(principal.id)) return true;
  if (principal.roles.some((r) => rules.roles.includes(r))) return true;
  for (const [name, allowed] of claimRules) {
    if (!Object.prototype.hasOwnProperty.call(principal.claims, name)) continue;
    const value = principal.claims[name];
    const values = Array.isArray(value) ? value : [value];
    if (values.some((v) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') && allowed.includes(String(v)))) return true;
  }
  return false;
}

/** Slot 4 of CHECK_FACTORIES. */
export const authorizeCheck: CheckFactory = (service): AdmissionCheck | undefined => {
  const rules = service.authorize;
  if (!rules) return undefined;
  if (!service.auth) throw new ConfigError('configuration is invalid', [`services.${service.name}.authorize: needs services.${service.name}.auth`]);
  return {
    name: 'authorize',
    check(ctx) {
      if (!ctx.principal) return unauthorized('auth_missing');
      return isAuthorized(ctx.principal, rules) ? undefined : forbidden('not_authorized');
    },
  };
};
