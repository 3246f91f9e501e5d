/**
 * The ticket-issuing endpoint: `POST /.gatehouse/tickets?service=NAME`
 * (path configurable: auth.tickets.path). The caller authenticates with any
 * of the service's other methods (bearer token, Basic, forward cookie), is
 * authorized like a connection would be, and gets
 *   200 {"ticket":"gt.…","expires_in":30}   Cache-Control: no-store
 * The ticket is bound to the service and to the caller's Origin.
 *
 * A request from a browser page carries Origin; it must be the gateway's own
 * origin or one the service allows (`origins`), else 403 — a foreign page
 * cannot mint tickets with the victim's cookie. Allowed cross-origin callers
 * get CORS headers with credentials (never `*`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdmissionContext, AdmissionRequest } from '../admission/types.js';
import { Rejection } from '../admission/types.js';
import { servicesOf } from '../config/load.js';
import type { GatehouseConfig, ServiceConfig } from '../config/schema.js';
import type { Audit } from '../observe/audit.js';
import type { Metrics } from '../observe/metrics.js';
import { isAuthorized } from './authorize.js';
import { authRuntime } from './runtime.js';

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

/** The request's own origin (scheme://host[:port]) as a browser would serialise it. */
export function ownOrigin(request: AdmissionRequest): string | undefined {
  const host = request.headers.host;
  if (typeof host !== 'string' || host === '') return undefined;
  const scheme = request.secure ? 'https' : 'http';
  const h = host.toLowerCase().replace(request.secure ? /:443$/ : /:80$/, '');
  return `${scheme}://${h}`;
}

/** Origins a service accepts: its `origins` list (admission issue's key), when present. */
function serviceOrigins(service: ServiceConfig): string[] {
  const list = (service as { origins?: unknown }).origins;
  return Array.isArray(list) ? list.filter((o): o is string => typeof o === 'string').map((o) => o.toLowerCase()) : [];
}

export interface TicketEndpointDeps {
  config: GatehouseConfig;
  audit?: Audit;
  metrics?: Metrics;
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

  const originHeader = request.headers.origin;
  const origin = typeof originHeader === 'string' ? originHeader.toLowerCase() : null;
  const cors: Record<string, string> = {};
  if (origin !== null) {
    if (origin !== ownOrigin(request) && !serviceOrigins(service).includes(origin)) {
      return refuse(new Rejection(403, 'ticket_origin_forbidden', 'origin not allowed'), service.name);
    }
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
  const issued = await runtime.tickets.issue(service.name, origin, result);
  if ('reason' in issued) return refuse(new Rejection(503, 'ticket_store_full', 'try again later', { 'Retry-After': '5' }), service.name, cors);
  deps.metrics?.inc('gatehouse_tickets_issued_total', { service: service.name });
  return json(200, { ticket: issued.ticket, expires_in: Math.round(runtime.tickets.ttl / 1000) }, cors);
}

/** The path of the endpoint for this config. */
export function ticketPath(config: GatehouseConfig): string {
  return config.auth.tickets.path;
}

/**
 * Adapter for the front door's HTTP hook: `frontDoor.addHttpHandler(ticketHttpHandler(toAdmissionRequest))`.
 * Takes the request converter as a parameter so this module does not import the front door.
 */
export function ticketHttpHandler(toRequest: (req: IncomingMessage, transport: 'websocket' | 'fallback') => AdmissionRequest) {
  return (req: IncomingMessage, res: ServerResponse, ctx: TicketEndpointDeps): boolean => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) !== ticketPath(ctx.config)) return false;
    // The body is not used; do not let it sit in buffers.
    req.resume();
    handleTicketRequest(toRequest(req, 'fallback'), ctx).then(
      (r) => { if (!res.headersSent) { res.writeHead(r.status, r.headers); res.end(r.body); } },
      () => { if (!res.headersSent) { res.writeHead(500, { 'cache-control': 'no-store' }); res.end(); } },
    );
    return true;
  };
}
