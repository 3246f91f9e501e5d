/**
 * The ticket-issuing endpoint: `POST /.gatehouse/tickets?service=NAME`
 * (path configurable: auth.tickets.path). The caller authenticates with any
 * of the service's other methods (bearer token, Basic, forward cookie), is
 * authorized like a connection would be, and gets
 *   200 {"ticket":"gt.…","expires_in":30}   Cache-Control: no-store
 * The ticket is bound to the service and to the caller's Origin.
 *
 * A request from a browser page carries Origin; it must be the gateway's own
 * origin or one the service allows (`origins`, patterns included), else 403 —
 * a foreign page cannot mint tickets with the victim's cookie. Allowed cross-origin callers
 * get CORS headers with credentials (never `*`).
 */
import { SharedStateUnavailable } from '../errors.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Admission, AdmissionContext, AdmissionRequest } from '../admission/types.js';
import { Rejection } from '../admission/types.js';
import { servicesOf } from '../config/load.js';
import type { GatehouseConfig, ServiceConfig } from '../config/schema.js';
import type { Audit } from '../observe/audit.js';
import type { Metrics } from '../observe/metrics.js';
import { countHeader } from '../admission/headers.js';
import { OriginAllowList, parseOrigin, SELF } from '../http/origin.js';
import { isAuthorized } from './authorize.js';
import { authRuntime } from './runtime.js';
import type { CredentialChain } from './types.js';

export interface TicketResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): TicketResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', ...headers },
    body: JSON.stringify(body),
  };
}

const allowLists = new WeakMap<ServiceConfig, OriginAllowList>();

/**
 * The serialised Origin of a ticket request: null when it has none, undefined
 * when it may not ask — not exactly one well-formed origin, or neither the
 * gateway's own origin nor one the service's `origins` admit (exact entries
 * and `*.` patterns, by the rules of the admission's origin check).
 */
function permittedOrigin(request: AdmissionRequest, service: ServiceConfig): string | null | undefined {
  if (countHeader(request.rawHeaders, 'origin') === 0) return null;
  const value = request.headers.origin;
  const parsed = typeof value === 'string' ? parseOrigin(value) : undefined;
  if (!parsed) return undefined;
  let list = allowLists.get(service);
  if (!list) {
    list = new OriginAllowList([...service.origins, SELF]);
    allowLists.set(service, list);
  }
  return list.permits(parsed, { secure: request.secure, host: request.headers.host }) ? parsed.serialized : undefined;
}

/**
 * The door checks of the admission pipeline (handshake rate, connection
 * limits) for a ticket request: an Admission to release when the answer is
 * sent, or the refusal (already audited).
 */
export type TicketDoor = (request: AdmissionRequest, service: ServiceConfig) => Promise<Admission | Rejection>;

export interface TicketEndpointDeps {
  config: GatehouseConfig;
  audit?: Audit;
  metrics?: Metrics;
  /** When given, every POST passes it before anything else is done for it. */
  door?: TicketDoor;
}

/** Decides a ticket request (transport-neutral: the HTTP adapter below feeds it). */
export async function handleTicketRequest(request: AdmissionRequest, deps: TicketEndpointDeps): Promise<TicketResponse> {
  const refuse = (r: Rejection, service?: string, extra: Record<string, string> = {}): TicketResponse => {
    deps.audit?.reject(r.reason, { service, client: request.remoteAddress, transport: 'ticket', status: r.status });
    return json(r.status, { error: r.message, reason: r.reason }, { ...r.headers, ...extra });
  };
  if (request.method !== 'POST' && request.method !== 'OPTIONS') {
    return refuse(new Rejection(405, 'ticket_method', 'method not allowed', { Allow: 'POST, OPTIONS' }));
  }
  const name = request.query.get('service') ?? '';
  const service = servicesOf(deps.config).find((s) => s.name === name);
  const runtime = authRuntime(deps.config);
  const chain = service ? runtime.ticketIssuers.get(service.name) : undefined;
  if (!service || !chain) return refuse(new Rejection(404, 'ticket_service_unknown', 'no service issues tickets under this name'));
  if (request.method === 'OPTIONS' || !deps.door) return issueTicket(request, service, chain, deps, refuse);
  // Rate and connection limits as for a handshake: authenticating the caller costs what a handshake costs.
  const admitted = await deps.door(request, service);
  if (admitted instanceof Rejection) return json(admitted.status, { error: admitted.message, reason: admitted.reason }, admitted.headers);
  try {
    return await issueTicket(request, service, chain, deps, refuse);
  } finally {
    admitted.release();
  }
}

type Refuse = (r: Rejection, service?: string, extra?: Record<string, string>) => TicketResponse;

async function issueTicket(request: AdmissionRequest, service: ServiceConfig, chain: CredentialChain, deps: TicketEndpointDeps, refuse: Refuse): Promise<TicketResponse> {
  const origin = permittedOrigin(request, service);
  if (origin === undefined) return refuse(new Rejection(403, 'ticket_origin_forbidden', 'origin not allowed'), service.name);
  const cors: Record<string, string> = {};
  if (origin !== null) {
    Object.assign(cors, { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' });
  }
  if (request.method === 'OPTIONS') {
    return { status: 204, headers: { ...cors, 'access-control-allow-methods': 'POST', 'access-control-allow-headers': 'Authorization', 'access-control-max-age': '600' }, body: '' };
  }

  const ctx: AdmissionContext = {
    request,
    service,
    origin,
    protocol: '',
    offeredProtocols: [],
    onRelease: () => {},
  };
  const result = await chain.run(ctx);
  if (result instanceof Rejection) return refuse(result, service.name, cors);
  if (service.authorize && !isAuthorized(result, service.authorize)) return refuse(new Rejection(403, 'not_authorized', 'forbidden'), service.name, cors);
  const tickets = authRuntime(deps.config).tickets;
  let issued;
  try {
    issued = await tickets.issue(service.name, origin, result);
  } catch (err) {
    // Fail closed: a ticket only the shared store could make single-use is not issued without it.
    if (err instanceof SharedStateUnavailable) return refuse(new Rejection(503, 'shared_state_unavailable', 'try again later', { 'Retry-After': '5' }), service.name, cors);
    throw err;
  }
  if ('reason' in issued) {
    const refusal = issued.reason === 'owner_full'
      ? new Rejection(429, 'ticket_limit', 'too many tickets outstanding', { 'Retry-After': String(Math.max(1, Math.ceil(issued.retryAfterMs / 1000))) })
      : new Rejection(503, 'ticket_store_full', 'try again later', { 'Retry-After': '5' });
    return refuse(refusal, service.name, cors);
  }
  deps.metrics?.inc('gatehouse_tickets_issued_total', { service: service.name });
  return json(200, { ticket: issued.ticket, expires_in: Math.round(tickets.ttl / 1000) }, cors);
}

/** The path of the endpoint for this config. */
export function ticketPath(config: GatehouseConfig): string {
  return config.auth.tickets.path;
}

/**
 * Adapter for the front door's HTTP hook: `frontDoor.addHttpHandler(ticketHttpHandler(toAdmissionRequest, door))`.
 * Takes the request converter and the door checks as parameters so this module does not import the front door.
 */
export function ticketHttpHandler(toRequest: (req: IncomingMessage, transport: 'ticket') => AdmissionRequest, door?: TicketDoor) {
  return (req: IncomingMessage, res: ServerResponse, ctx: TicketEndpointDeps): boolean => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== ticketPath(ctx.config)) return false;
    // The body is not used; do not let it sit in buffers.
    req.resume();
    handleTicketRequest(toRequest(req, 'ticket'), { ...ctx, door }).then(
      (r) => { if (!res.headersSent) { res.writeHead(r.status, r.headers); res.end(r.body); } },
      () => { if (!res.headersSent) { res.writeHead(500, { 'cache-control': 'no-store' }); res.end(); } },
    );
    return true;
  };
}
