/**
 * Check 7 (after authentication and authorization): subprotocol negotiation.
 * The service lists what it speaks in preference order; the first of those the
 * client offered (`ctx.offeredProtocols`) becomes `ctx.protocol`, echoed
 * exactly in the 101. A value the client never offered is never chosen.
 * Nothing acceptable on a service with `require_subprotocol` → 400
 * `subprotocol_not_acceptable`; otherwise the connection goes ahead without one.
 */
import { ConfigError } from '../errors.js';
import { Rejection, type AdmissionCheck, type CheckFactory } from './types.js';

export const subprotocolCheck: CheckFactory = (service) => {
  const preferred = service.subprotocols;
  const required = service.require_subprotocol;
  if (required && preferred.length === 0) {
    throw new ConfigError('configuration is invalid', [
      `services.${service.name}.require_subprotocol: needs at least one entry in subprotocols`,
    ]);
  }
  const check: AdmissionCheck = {
    name: 'subprotocol',
    check(ctx) {
      ctx.protocol = '';
      const offered = ctx.offeredProtocols;
      if (offered.length > 0) {
        for (const p of preferred) {
          if (offered.includes(p)) {
            ctx.protocol = p;
            return undefined;
          }
        }
      }
      if (required) {
        return new Rejection(400, 'subprotocol_not_acceptable',
          `this service requires one of these subprotocols: ${preferred.join(', ')}`);
      }
      return undefined;
    },
  };
  return check;
};
