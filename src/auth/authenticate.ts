/**
 * The authentication check: runs a service's methods in order; the first that
 * finds its kind of credentials decides (admit, or refuse). None found → 401
 * naming every method's challenge. Failed attempts are counted per client
 * address (IPv6: per /64, as every per-address limit) and, for `basic`, per
 * user name from that address; past the limit → 429 + Retry-After before any
 * credential is even looked at.
 *
 * Whatever decides, credential carriers in Sec-WebSocket-Protocol are removed
 * from `ctx.offeredProtocols`, so the subprotocol check can never echo a token.
 */
import { Rejection, type AdmissionCheck, type AdmissionContext, type Principal, type CheckFactory } from '../admission/types.js';
import type { AuthMethodConfig, ServiceAuthConfig } from '../config/auth.js';
import type { ServiceConfig } from '../config/schema.js';
import { addressKey } from '../http/cidr.js';
import type { Metrics } from '../observe/metrics.js';
import { BasicAuthenticator } from './basic.js';
import { stopWatching } from './expiry.js';
import { headerCount, offeredProtocols } from './credentials.js';
import { ForwardAuthenticator } from './forward.js';
import { loadIdentityKey } from './identity.js';
import { JwtAuthenticator } from './jwt.js';
import { badRequest, tooManyFailures, unauthorized } from './rejections.js';
import { authRuntime, type AuthRuntime } from './runtime.js';
import { TicketAuthenticator } from './ticket.js';
import type { AuthOutcome, Authenticator, CredentialChain } from './types.js';

export class AuthChain implements CredentialChain {
  private readonly challenge: string;
  private readonly carrierPrefixes: string[];

  constructor(
    readonly service: string,
    private readonly authenticators: Authenticator[],
    methods: AuthMethodConfig[],
    private readonly runtime: AuthRuntime,
    private readonly metrics?: Metrics,
  ) {
    const challenges = authenticators.map((a) => a.challenge).filter((c): c is string => c !== undefined);
    this.challenge = challenges.length > 0 ? challenges.join(', ') : 'Session realm="gatehouse"';
    this.carrierPrefixes = methods.flatMap((m) => {
      if (m.type === 'jwt') return m.from.includes('protocol') ? [m.protocol_prefix] : [];
      if (m.type === 'ticket') return [m.protocol_prefix];
      return [];
    });
  }

  /** Who is calling, or why not. Never throws for bad input. */
  async run(ctx: AdmissionContext): Promise<Principal | Rejection> {
    try {
      return await this.decide(ctx);
    } finally {
      this.scrubCarriers(ctx);
    }
  }

  private async decide(ctx: AdmissionContext): Promise<Principal | Rejection> {
    // The key every per-address limit counts under (IPv6: the /64), else one subscriber has 2^64 budgets.
    const address = addressKey(ctx.request.remoteAddress);
    const { counter, limits } = this.runtime.addressFailures;
    // Reserved before any credential is checked, so parallel attempts cannot all pass a check made before the first fails.
    const wait = await counter.reserve(address, limits);
    if (wait > 0) return tooManyFailures(wait / 1000);
    let failed = false;
    try {
      const outcome = await this.firstDecision(ctx);
      failed = outcome.kind === 'refused' && outcome.failed;
      return outcome.kind === 'ok' ? outcome.principal : outcome.rejection;
    } finally {
      await counter.settle(address, failed, limits);
    }
  }

  /** The first method that finds its kind of credentials decides; none found → 401 naming every challenge. */
  private async firstDecision(ctx: AdmissionContext): Promise<Exclude<AuthOutcome, { kind: 'none' }>> {
    if (this.carrierPrefixes.length > 0 && offeredProtocols(ctx) === undefined) {
      return { kind: 'refused', rejection: badRequest('protocol_header_malformed'), failed: false };
    }
    // Node keeps only the first of several Authorization headers; which one a proxy saw is unknowable.
    if (headerCount(ctx.request, 'authorization') > 1) {
      return { kind: 'refused', rejection: unauthorized('credentials_ambiguous', this.challenge), failed: true };
    }
    for (const authenticator of this.authenticators) {
      const outcome = await authenticator.authenticate(ctx);
      if (outcome.kind === 'none') continue;
      const result = outcome.kind === 'ok' ? 'ok' : outcome.rejection.reason;
      this.metrics?.inc('gatehouse_auth_total', { method: authenticator.method, result });
      return outcome;
    }
    return { kind: 'refused', rejection: unauthorized('auth_missing', this.challenge), failed: false };
  }

  private scrubCarriers(ctx: AdmissionContext): void {
    if (this.carrierPrefixes.length === 0 || ctx.offeredProtocols.length === 0) return;
    ctx.offeredProtocols = ctx.offeredProtocols.filter((p) => !this.carrierPrefixes.some((prefix) => p.startsWith(prefix)));
  }
}

export function buildAuthenticators(service: ServiceConfig, auth: ServiceAuthConfig, runtime: AuthRuntime, includeTickets: boolean): Authenticator[] {
  const out: Authenticator[] = [];
  for (const m of auth.methods) {
    switch (m.type) {
      case 'basic': out.push(new BasicAuthenticator(m, runtime.userFailures)); break;
      case 'jwt': out.push(new JwtAuthenticator(m, runtime.jwks)); break;
      case 'forward': out.push(new ForwardAuthenticator(m, service.name, runtime.recheckBuilders)); break;
      case 'ticket': if (includeTickets) out.push(new TicketAuthenticator(m, runtime.tickets, runtime.recheckBuilders)); break;
    }
  }
  return out;
}

/** Slot 3 of CHECK_FACTORIES. */
export const authenticateCheck: CheckFactory = (service, env): AdmissionCheck | undefined => {
  // Fail at start, not at the first connection, when the identity key is unusable.
  if (service.identity.mode === 'jwt' && service.identity.signing_key_file) loadIdentityKey(service.identity.signing_key_file);
  const auth = service.auth;
  if (!auth) return undefined;
  const runtime = authRuntime(env.config, env.shared);
  const chain = new AuthChain(service.name, buildAuthenticators(service, auth, runtime, true), auth.methods, runtime, env.metrics);
  const others = auth.methods.filter((m) => m.type !== 'ticket');
  // Tickets are issued to callers authenticated by another of the service's methods.
  if (others.length > 0 && others.length < auth.methods.length) {
    runtime.ticketIssuers.set(service.name, new AuthChain(service.name, buildAuthenticators(service, { ...auth, methods: others }, runtime, false), others, runtime, env.metrics));
  }
  return {
    name: 'authenticate',
    async check(ctx) {
      const result = await chain.run(ctx);
      if (result instanceof Rejection) return result;
      ctx.principal = result;
      // When the connection ends (or a later check refuses), its expiry watch ends too.
      ctx.onRelease(stopWatching, result);
      return undefined;
    },
  };
};
