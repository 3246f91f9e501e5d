/**
 * Config keys of the authentication issue (4): fields spread into every service, and root sections.
 *
 * Per service:
 *   auth:       how callers prove who they are (a chain of methods; the first that finds credentials decides)
 *   authorize:  who, once authenticated, may use the service (users, roles, claim values)
 *   identity:   how the verified identity is handed to a backend (headers or a gateway-signed JWT)
 * At the root (`auth:`): state shared by every service — failed-attempt limits, tickets, the identity signing key.
 *
 * See docs/authentication.md for the meaning of every key.
 */
import { z } from 'zod';
import { duration } from './units.js';
import { limit } from './limits.js';

/** Asymmetric JWS algorithms a JWT issuer may be pinned to. `none` is not representable on purpose. */
export const ASYMMETRIC_JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export const HMAC_JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;

const stringList = () => z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));

/** A header name as Node reports it (lowercase). */
const headerName = () => z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'not a header name').transform((s) => s.toLowerCase());

/** A key file, optionally naming the `kid` of its one key (PEM has nowhere to say it). */
const keyFileEntry = z.union([
  z.string().min(1).transform((file) => ({ file, kid: undefined as string | undefined })),
  z.strictObject({ file: z.string().min(1), kid: z.string().min(1).max(256).optional() }),
]);

/** One trusted JWT issuer: exact `iss`, accepted audiences, algorithms and where its keys are. */
export const jwtIssuerSchema = z.strictObject({
  /** The exact `iss` claim value. */
  issuer: z.string().min(1),
  /** Accepted `aud` values (the token must name at least one). */
  audience: stringList().pipe(z.array(z.string().min(1)).min(1)),
  /** Algorithm allow-list for this issuer. Asymmetric and HMAC algorithms cannot be mixed (no key confusion). */
  algorithms: stringList().pipe(z.array(z.enum([...ASYMMETRIC_JWT_ALGORITHMS, ...HMAC_JWT_ALGORITHMS])).min(1)),
  /** JWKS URL (https, or http for loopback/tests). Keys are cached; an unknown `kid` triggers a refresh. */
  jwks_url: z.url({ protocol: /^https?$/ }).optional(),
  /**
   * Local key files: PEM (SPKI public key or X.509 certificate) or JWK / JWKS
   * JSON; an entry `{ file, kid }` names the `kid` of a file's one key. A key
   * without a `kid` of its own verifies tokens whatever `kid` they name.
   */
  key_files: z.union([keyFileEntry, z.array(keyFileEntry).min(1)]).transform((v) => (Array.isArray(v) ? v : [v])).optional(),
  /** Shared secret for HS* algorithms (at least 32 bytes; use ${ENV}). */
  secret: z.string().min(32, 'an HMAC secret needs at least 32 bytes').optional(),
  /** JWKS fetch timeout. */
  jwks_timeout: duration().default(5_000),
  /** How long fetched keys are trusted before a refetch. */
  jwks_cache: duration().default(600_000),
  /** Least time between two refetches caused by unknown `kid`s (protects the JWKS host). */
  jwks_cooldown: duration().default(30_000),
}).superRefine((v, ctx) => {
  const hmac = v.algorithms.filter((a) => (HMAC_JWT_ALGORITHMS as readonly string[]).includes(a));
  const sources = [v.jwks_url, v.key_files, v.secret].filter((x) => x !== undefined).length;
  if (sources !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of jwks_url, key_files, secret' });
  if (hmac.length > 0 && hmac.length !== v.algorithms.length) {
    ctx.addIssue({ code: 'custom', path: ['algorithms'], message: 'do not mix HMAC (HS*) and asymmetric algorithms for one issuer' });
  }
  if (hmac.length > 0 && v.secret === undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'HS* algorithms need `secret`' });
  if (hmac.length === 0 && v.secret !== undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: '`secret` is only for HS* algorithms' });
});

const jwtMethodSchema = z.strictObject({
  type: z.literal('jwt'),
  issuers: z.array(jwtIssuerSchema).min(1),
  /** Where the token may come from, in this order. `query` must be listed explicitly to be used. */
  from: z.array(z.enum(['header', 'cookie', 'protocol', 'query'])).min(1).default(['header', 'protocol']),
  /** Cookie holding the token when `from` lists `cookie`. */
  cookie: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/).default('access_token'),
  /** A Sec-WebSocket-Protocol entry `<prefix><jwt>` carries the token; it is removed from the offer, never echoed. */
  protocol_prefix: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/).default('bearer.'),
  /** Query parameter when `from` lists `query` (tokens in URLs leak into logs elsewhere: avoid). */
  query_param: z.string().min(1).default('access_token'),
  /** Tolerance for `exp` / `nbf` / `iat`. */
  clock_skew: duration().default(30_000),
  /** Claim holding the roles (array of strings, or a space-separated string). */
  roles_claim: z.string().min(1).default('roles'),
  /** Claim naming the user. */
  subject_claim: z.string().min(1).default('sub'),
  /** Longest accepted token, in characters. */
  max_length: z.number().int().positive().default(8192),
});

const basicMethodSchema = z.strictObject({
  type: z.literal('basic'),
  /** Realm named in `WWW-Authenticate: Basic realm="…"`. */
  realm: z.string().regex(/^[^"\\\r\n]*$/, 'no quotes, backslashes or line breaks').default('gatehouse'),
  /** `name:hash` lines (scrypt, argon2id, or bcrypt $2y$/$2b$ from htpasswd); `#` comments. */
  users_file: z.string().min(1),
  /** Roles per user, e.g. { alice: [admin] }. */
  roles: z.record(z.string(), z.array(z.string())).default({}),
});

const forwardMethodSchema = z.strictObject({
  type: z.literal('forward'),
  /** The auth endpoint (like nginx auth_request); it receives the request's Cookie and Authorization. */
  url: z.url({ protocol: /^https?$/ }),
  /** Only act when this cookie is present (otherwise: when a Cookie or Authorization header is). */
  cookie: z.string().optional(),
  timeout: duration().default(3_000),
  /** Response header with the user id (required in a 2xx answer). */
  user_header: headerName().default('x-auth-user'),
  /** Response header with comma-separated roles. */
  roles_header: headerName().default('x-auth-roles'),
  /** How long an answer (2xx, 401, 403) is reused for the same credentials. 0 disables. */
  cache: duration().default(5_000),
  /** Re-ask the endpoint this often for each open connection; a 401/403 closes it with 1008. 0 disables. */
  revalidate: duration().default(60_000),
  /** Extra request headers for the auth endpoint (e.g. a shared secret). */
  headers: z.record(z.string(), z.string()).default({}),
});

const ticketMethodSchema = z.strictObject({
  type: z.literal('ticket'),
  /** Query parameter carrying the ticket. */
  query_param: z.string().min(1).default('ticket'),
  /** A Sec-WebSocket-Protocol entry `<prefix><ticket>` may carry it too (removed from the offer). */
  protocol_prefix: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/).default('ticket.'),
  /** Accept backend-minted HMAC tickets (needs root auth.tickets.hmac_keys). */
  accept_minted: z.boolean().default(true),
});

export const authMethodSchema = z.discriminatedUnion('type', [jwtMethodSchema, basicMethodSchema, forwardMethodSchema, ticketMethodSchema]);

export const serviceAuthSchema = z.strictObject({
  /** Tried in order; the first method that finds its kind of credentials decides. None found → 401. */
  methods: z.array(authMethodSchema).min(1),
  /** Keep a connection this long past its credential's expiry before closing it 1008. */
  grace: duration().default(0),
});

export const authorizeSchema = z.strictObject({
  /** Principals allowed by id. */
  users: z.array(z.string()).default([]),
  /** Principals allowed by any of these roles. */
  roles: z.array(z.string()).default([]),
  /** Principals allowed when a claim has one of the values (array claims: any element). */
  claims: z.record(z.string(), stringList()).default({}),
});

export const identitySchema = z.strictObject({
  /** headers: X-Gatehouse-User / -Roles / -Auth-Method; jwt: X-Gatehouse-Identity with a gateway-signed JWT; none. */
  mode: z.enum(['headers', 'jwt', 'none']).default('headers'),
  /** Forward the client's Authorization and Cookie headers to the backend too. */
  pass_credentials: z.boolean().default(false),
  /** mode jwt: PEM private key (RSA → RS256, EC P-256 → ES256, P-384 → ES384, Ed25519 → EdDSA). */
  signing_key_file: z.string().optional(),
  /** mode jwt: `kid` in the JWT header, so backends can pick the key during a rotation. */
  key_id: z.string().optional(),
  /** mode jwt: `iss` claim. */
  issuer: z.string().default('gatehouse'),
  /** mode jwt: `aud` claim (defaults to the service name). */
  audience: z.string().optional(),
  /** mode jwt: lifetime of the identity JWT (it is checked once, when the backend accepts the connection). */
  ttl: duration().default(60_000),
}).refine((v) => v.mode !== 'jwt' || v.signing_key_file !== undefined, { message: 'mode jwt needs signing_key_file', path: ['signing_key_file'] });

export const authServiceFields = {
  auth: serviceAuthSchema.optional(),
  authorize: authorizeSchema.optional(),
  identity: identitySchema.prefault({}),
};

export const authRootSchema = z.strictObject({
  /** Failed authentications tolerated per window before 429 + Retry-After (0: no limit). */
  failures: z.strictObject({
    per_address: limit('Failed authentications per client address per window before 429.').default(10),
    /** Failures of one user name (basic) from one address (IPv6: its /64); never the name everywhere (no lockout from elsewhere). */
    per_user: limit('Failed authentications of one user name from one address per window before 429.').default(10),
    window: duration().default(60_000),
  }).prefault({}),
  tickets: z.strictObject({
    /** Lifetime of a gateway-issued ticket, and the longest a minted ticket may live. */
    ttl: duration().default(30_000).refine((n) => n > 0 && n <= 300_000, 'between 1ms and 5m'),
    /** Path of the issuing endpoint: POST <path>?service=NAME. */
    path: z.string().regex(/^\/[\x21-\x7e]*$/).default('/.gatehouse/tickets'),
    /** Tickets one principal may hold unused at once (over → 429 ticket_limit), so no caller can fill the store. */
    per_principal: limit('Unused tickets one principal may hold at once (over: 429 ticket_limit).').default(10),
    /** Keys (≥ 32 bytes) backends mint tickets with; several allow rotation. */
    hmac_keys: z.array(z.string().min(32, 'an HMAC key needs at least 32 bytes')).default([]),
  }).prefault({}),
});

export const authRootFields = {
  auth: authRootSchema.prefault({}),
};

export type ServiceAuthConfig = z.output<typeof serviceAuthSchema>;
export type AuthMethodConfig = z.output<typeof authMethodSchema>;
export type JwtMethodConfig = z.output<typeof jwtMethodSchema>;
export type JwtIssuerConfig = z.output<typeof jwtIssuerSchema>;
export type JwtKeyFile = z.output<typeof keyFileEntry>;
export type BasicMethodConfig = z.output<typeof basicMethodSchema>;
export type ForwardMethodConfig = z.output<typeof forwardMethodSchema>;
export type TicketMethodConfig = z.output<typeof ticketMethodSchema>;
export type AuthorizeConfig = z.output<typeof authorizeSchema>;
export type IdentityConfig = z.output<typeof identitySchema>;
export type AuthRootConfig = z.output<typeof authRootSchema>;
