/**
 * What the auth checks of all services share within one configuration: the
 * failed-attempt counters (with their limits), the ticket store, the JWKS
 * caches and each service's authentication chain (the ticket endpoint reuses it).
 *
 * Keyed by the configuration object, which both the admission checks
 * (CheckEnv.config) and the front door's HTTP hooks (ctx.config) hold, so
 * nothing else has to carry it. A reload builds a new runtime for the new
 * configuration over the same shared state (CheckEnv.shared: failure counts,
 * used ticket ids, issued tickets), so what guards security survives it.
 */
import type { GatehouseConfig } from '../config/schema.js';
import { orNoLimit } from '../config/limits.js';
import type { AttemptCounter, AttemptLimits, SharedState } from '../shared-state/contract.js';
import { MemorySharedState } from '../shared-state/memory.js';
import { JwksRegistry } from './jwt-keys.js';
import { TicketStore } from './ticket.js';
import type { CredentialChain } from './types.js';
import type { RecheckBuilder } from './recheck.js';

/** An attempt counter with the limits this configuration gives it. */
export interface FailureLimit {
  readonly counter: AttemptCounter;
  readonly limits: AttemptLimits;
}

export interface AuthRuntime {
  readonly addressFailures: FailureLimit;
  readonly userFailures: FailureLimit;
  readonly tickets: TicketStore;
  readonly jwks: JwksRegistry;
  /** Service name → its chain without ticket methods (what may authenticate a ticket request). */
  readonly ticketIssuers: Map<string, CredentialChain>;
  /** recheckBuilderKey(service, method) → how to rebuild that method's re-check from plain data (tickets redeemed elsewhere). */
  readonly recheckBuilders: Map<string, RecheckBuilder>;
}

const runtimes = new WeakMap<GatehouseConfig, AuthRuntime>();

/** The runtime of `config`, made over `shared` the first time (a state of its own when none is given). */
export function authRuntime(config: GatehouseConfig, shared?: SharedState): AuthRuntime {
  let rt = runtimes.get(config);
  if (!rt) {
    const state = shared ?? new MemorySharedState();
    const f = config.auth.failures;
    rt = {
      addressFailures: { counter: state.addressFailures, limits: { limit: orNoLimit(f.per_address), windowMs: f.window } },
      userFailures: { counter: state.userFailures, limits: { limit: orNoLimit(f.per_user), windowMs: f.window } },
      tickets: new TicketStore(config.auth.tickets, state.issuedTickets, state.usedTicketIds),
      jwks: new JwksRegistry(),
      ticketIssuers: new Map(),
      recheckBuilders: new Map(),
    };
    runtimes.set(config, rt);
  }
  return rt;
}
