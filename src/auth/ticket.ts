/**
 * One-time tickets: for clients that cannot present their credentials at the
 * upgrade (a browser holding a bearer token in memory asks for a ticket over
 * fetch, then opens `wss://…?ticket=…`).
 *
 * Two kinds, both single use and short-lived:
 *  - gateway-issued: `gt.` + 43 base64url characters (256 random bits), issued
 *    by `POST /.gatehouse/tickets?service=NAME` to a caller authenticated by
 *    another method; bound to the service and to the caller's Origin.
 *  - backend-minted: `gm1.<payload>.<mac>` (format in docs/authentication.md),
 *    HMAC-SHA256 with a shared key; single use through its `jti`.
 *
 * A ticket is consumed by one atomic take from the shared state's vault (a
 * used `jti` by one atomic claim), so of racing handshakes with one ticket
 * exactly one finds it — also across a configuration reload.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AdmissionContext, Principal } from '../admission/types.js';
import type { AuthRootConfig, TicketMethodConfig } from '../config/auth.js';
import { orNoLimit } from '../config/limits.js';
import type { IssueResult, IssuedTicket, SingleUseIds, TicketVault } from '../shared-state/contract.js';
import { findQuery, takeProtocolCredential } from './credentials.js';
import { recheckBuilderKey, recheckOf, setRecheck, type RecheckBuilder } from './recheck.js';
import { forbidden, unauthorized } from './rejections.js';
import { NONE, type AuthOutcome, type Authenticator } from './types.js';

export const ISSUED_PREFIX = 'gt.';
export const MINTED_PREFIX = 'gm1.';
const ISSUED = /^gt\.[A-Za-z0-9_-]{43}$/;
const MINTED = /^gm1\.([A-Za-z0-9_-]{1,2048})\.([A-Za-z0-9_-]{43})$/;

/** Fields of a backend-minted ticket's payload (JSON, base64url). */
export interface MintedTicketPayload {
  /** Service name the ticket is for. */
  svc: string;
  /** User id. */
  sub: string;
  roles?: string[];
  /** Expiry, epoch seconds; at most the configured ticket ttl from now. */
  exp: number;
  /** ≥ 128 random bits, base64url: makes the ticket single use. */
  jti: string;
  /** Bind to this serialised Origin. */
  origin?: string;
  /** Extra claims handed to authorization and the backend identity. */
  claims?: Record<string, unknown>;
  /** When the user's own session ends (epoch seconds): the connection is closed then. */
  session_exp?: number;
}

/**
 * Issues and consumes tickets. The tickets issued and the ids used live in the
 * shared state (they survive a reload); this object holds the current
 * configuration's ttl and keys.
 */
export class TicketStore {
  constructor(
    private readonly config: AuthRootConfig['tickets'],
    private readonly vault: TicketVault,
    private readonly usedIds: SingleUseIds,
    private readonly now: () => number = Date.now,
  ) {}

  get ttl(): number {
    return this.config.ttl;
  }

  /** Issues a ticket for `principal`, or says why not. */
  async issue(service: string, origin: string | null, principal: Principal): Promise<{ ticket: string; expiresAt: number } | Exclude<IssueResult, { ok: true }>> {
    const ticket = ISSUED_PREFIX + randomBytes(32).toString('base64url');
    const expiresAt = this.now() + this.config.ttl;
    const portable = recheckOf(principal)?.portable;
    const entry: IssuedTicket = portable ? { service, origin, principal, expiresAt, recheck: portable } : { service, origin, principal, expiresAt };
    const result = await this.vault.put(ticket, entry, ownerOf(principal), orNoLimit(this.config.per_principal));
    return result.ok ? { ticket, expiresAt } : result;
  }

  /** Takes a gateway-issued ticket out of the store: it can never be found again. */
  async consumeIssued(ticket: string): Promise<IssuedTicket | 'unknown' | 'expired'> {
    const entry = await this.vault.take(ticket);
    if (!entry) return 'unknown';
    return entry.expiresAt <= this.now() ? 'expired' : entry;
  }

  /** Verifies a minted ticket and marks its jti used. */
  async consumeMinted(ticket: string): Promise<MintedTicketPayload | 'invalid' | 'expired' | 'replayed'> {
    const payload = this.verifyMinted(ticket);
    if (typeof payload === 'string') return payload;
    const claim = await this.usedIds.claim(payload.jti, payload.exp * 1000 + 5_000);
    if (claim === 'used') return 'replayed';
    return claim === 'full' ? 'invalid' : payload;
  }

  private verifyMinted(ticket: string): MintedTicketPayload | 'invalid' | 'expired' {
    const m = MINTED.exec(ticket);
    if (!m || this.config.hmac_keys.length === 0) return 'invalid';
    const mac = Buffer.from(m[2], 'base64url');
    let macOk = false;
    for (const key of this.config.hmac_keys) {
      const expected = createHmac('sha256', key).update(MINTED_PREFIX + m[1]).digest();
      // Evaluate every key (no early exit) so timing does not tell which key matched.
      if (timingSafeEqual(expected, mac)) macOk = true;
    }
    if (!macOk) return 'invalid';
    let payload: MintedTicketPayload;
    try {
      payload = JSON.parse(Buffer.from(m[1], 'base64url').toString('utf8')) as MintedTicketPayload;
    } catch {
      return 'invalid';
    }
    if (!validPayload(payload)) return 'invalid';
    const now = this.now();
    // A minted ticket may not live longer than an issued one (+5 s for clock differences).
    if (payload.exp * 1000 <= now) return 'expired';
    if (payload.exp * 1000 > now + this.config.ttl + 5_000) return 'invalid';
    return payload;
  }
}

/** Whose tickets these are, for the per-principal cap: the method and the id it established. */
function ownerOf(principal: Principal): string {
  return `${principal.method}:${principal.id}`;
}

function validPayload(p: unknown): p is MintedTicketPayload {
  if (typeof p !== 'object' || p === null) return false;
  const t = p as Record<string, unknown>;
  return typeof t.svc === 'string' && typeof t.sub === 'string' && t.sub.length > 0 && t.sub.length <= 256
    && typeof t.exp === 'number' && Number.isFinite(t.exp)
    && typeof t.jti === 'string' && /^[A-Za-z0-9_-]{22,128}$/.test(t.jti)
    && (t.roles === undefined || (Array.isArray(t.roles) && t.roles.every((r) => typeof r === 'string')))
    && (t.origin === undefined || typeof t.origin === 'string')
    && (t.claims === undefined || (typeof t.claims === 'object' && t.claims !== null && !Array.isArray(t.claims)))
    && (t.session_exp === undefined || (typeof t.session_exp === 'number' && Number.isFinite(t.session_exp)));
}

/** Makes a backend-minted ticket (what a backend app does; used by tests and docs). */
export function mintTicket(key: string, payload: MintedTicketPayload): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const mac = createHmac('sha256', key).update(MINTED_PREFIX + body).digest('base64url');
  return `${MINTED_PREFIX}${body}.${mac}`;
}

/** The serialised origin the request came from (origin check's result, else the header). */
function requestOrigin(ctx: AdmissionContext): string | null {
  if (ctx.origin) return ctx.origin;
  const h = ctx.request.headers.origin;
  return typeof h === 'string' ? h.toLowerCase() : null;
}

export class TicketAuthenticator implements Authenticator {
  readonly method = 'ticket';
  readonly challenge = 'Ticket realm="gatehouse"';

  constructor(private readonly config: TicketMethodConfig, private readonly store: TicketStore, private readonly builders?: Map<string, RecheckBuilder>) {}

  private refused(reason: string): AuthOutcome {
    return { kind: 'refused', rejection: unauthorized(reason, this.challenge), failed: true };
  }

  async authenticate(ctx: AdmissionContext): Promise<AuthOutcome> {
    const fromProtocol = takeProtocolCredential(ctx, this.config.protocol_prefix);
    const q = findQuery(ctx.request, this.config.query_param);
    if (q.kind === 'ambiguous') return this.refused('ticket_ambiguous');
    const ticket = q.kind === 'found' ? q.value : fromProtocol;
    if (ticket === undefined) return NONE;

    if (ticket.startsWith(ISSUED_PREFIX)) {
      if (!ISSUED.test(ticket)) return this.refused('ticket_malformed');
      const entry = await this.store.consumeIssued(ticket);
      if (entry === 'unknown') return this.refused('ticket_unknown');
      if (entry === 'expired') return this.refused('ticket_expired');
      if (entry.service !== ctx.service.name) return { kind: 'refused', rejection: forbidden('ticket_wrong_service'), failed: true };
      if (entry.origin !== null && entry.origin !== requestOrigin(ctx)) return { kind: 'refused', rejection: forbidden('ticket_wrong_origin'), failed: true };
      const principal: Principal = { ...entry.principal, method: 'ticket', carrier: 'request', claims: { ...entry.principal.claims, via: entry.principal.method } };
      // The very principal (in-process store) carries its re-check; a copy from a shared store has it as data.
      const portable = entry.recheck;
      const recheck = recheckOf(entry.principal)
        ?? (portable ? this.builders?.get(recheckBuilderKey(entry.service, portable.method))?.(principal, portable.data) : undefined);
      if (recheck) setRecheck(principal, recheck);
      return { kind: 'ok', principal };
    }
    if (ticket.startsWith(MINTED_PREFIX) && this.config.accept_minted) {
      const payload = await this.store.consumeMinted(ticket);
      if (payload === 'invalid') return this.refused('ticket_invalid');
      if (payload === 'expired') return this.refused('ticket_expired');
      if (payload === 'replayed') return this.refused('ticket_replayed');
      if (payload.svc !== ctx.service.name) return { kind: 'refused', rejection: forbidden('ticket_wrong_service'), failed: true };
      if (payload.origin !== undefined && payload.origin.toLowerCase() !== requestOrigin(ctx)) {
        return { kind: 'refused', rejection: forbidden('ticket_wrong_origin'), failed: true };
      }
      return {
        kind: 'ok',
        principal: {
          id: payload.sub,
          roles: payload.roles ?? [],
          claims: { ...(payload.claims ?? {}), via: 'minted' },
          expiresAt: payload.session_exp !== undefined ? payload.session_exp * 1000 : undefined,
          method: 'ticket',
          carrier: 'request',
        },
      };
    }
    return this.refused('ticket_malformed');
  }
}
