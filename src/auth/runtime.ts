/**
 * State the auth checks of all services share within one gateway: the
 * failed-attempt limiters, the ticket store, the JWKS caches and each
 * service's authentication chain (the ticket endpoint reuses it).
 *
 * Keyed by the configuration object, which both the admission checks
 * (CheckEnv.config) and the front door's HTTP hooks (ctx.config) hold, so
 * nothing else has to carry it. A reload builds new checks with a new config
 * and so starts with fresh state (outstanding tickets, at most `ttl` old, are dropped).
 */
import type { GatehouseConfig } from '../config/schema.js';
import { FailureLimiter } from './failure-limiter.js';
import { JwksRegistry } from './jwt-keys.js';
import { TicketStore } from './ticket.js';
import type { CredentialChain } from './types.js';

export interface AuthRuntime {
  readonly addressFailures: FailureLimiter;
  readonly userFailures: FailureLimiter;
  readonly tickets: TicketStore;
  readonly jwks: JwksRegistry;
  /** Service name → its chain without ticket methods (what may authenticate a ticket request). */
  readonly ticketIssuers: Map<string, CredentialChain>;
}

const runtimes = new WeakMap<GatehouseConfig, AuthRuntime>();

export function authRuntime(config: GatehouseConfig): AuthRuntime {
  let rt = runtimes.get(config);
  if (!rt) {
    const f = config.auth.failures;
    rt = {
      addressFailures: new FailureLimiter(f.per_address, f.window),
      userFailures: new FailureLimiter(f.per_user, f.window),
      tickets: new TicketStore(config.auth.tickets),
      jwks: new JwksRegistry(),
      ticketIssuers: new Map(),
    };
    runtimes.set(config, rt);
  }
  return rt;
}
