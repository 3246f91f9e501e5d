/**
 * How the fallback answers: the headers of every answer (never cached or
 * sniffed; CORS only for an allowed origin, echoed exactly), preflights, and
 * refusals — audited with a stable reason, a refused upload's socket closed
 * after a moment — and violations by a session's own client, which close the
 * session with the code a WebSocket connection would get.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Rejection } from '../admission/types.js';
import type { ServiceConfig } from '../config/schema.js';
import type { FallbackSession } from '../fallback/session.js';
import type { WireError } from '../fallback/wire.js';
import type { BodyError } from './fallback-body.js';
import type { FallbackContext } from './fallback-context.js';
import { serializeOrigin, type OriginPolicy, type OriginRequestInfo } from './fallback-origin.js';
import { clientAddressOf, hopOf } from './listener.js';
import { fallbackQuery } from './fallback-query.js';

/** Headers on every fallback answer: never cached or sniffed (CORS headers follow for an allowed origin). */
const NOT_CACHED = ['Cache-Control', 'no-store', 'Pragma', 'no-cache', 'X-Content-Type-Options', 'nosniff', 'Referrer-Policy', 'no-referrer', 'Vary', 'Origin, Cookie'];

export class FallbackAnswers {
  constructor(private readonly originPolicy: OriginPolicy) {}

  preflight(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext): void {
    const origin = serializeOrigin(req.headers.origin);
    if (origin === null || origin === 'invalid' || !this.originPolicy(service, origin, originRequestInfo(req))) {
      this.refuse(req, res, service, ctx, new Rejection(403, 'fallback_preflight_origin', 'origin not allowed'));
      return;
    }
    res.statusCode = 204;
    this.commonHeaders(res, origin);
    res.setHeader('Access-Control-Allow-Methods', 'POST');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
    res.setHeader('Access-Control-Max-Age', '600');
    res.end();
  }

  /**
   * Headers on every fallback answer, as a flat name/value list (a session
   * builds it once, and its answers give it to `writeHead` as it is): never
   * cached or sniffed, and CORS only for an origin the service allows —
   * echoed exactly, with credentials, never `*`.
   */
  commonHeaderList(origin: string | null): string[] {
    if (origin === null) return [...NOT_CACHED];
    return [...NOT_CACHED, 'Access-Control-Allow-Origin', origin, 'Access-Control-Allow-Credentials', 'true',
      'Access-Control-Expose-Headers', 'WWW-Authenticate'];
  }

  /** The common headers (`commonHeaderList`) set on `res`, for answers that add more with setHeader. */
  commonHeaders(res: ServerResponse, origin: string | null): void {
    const list = this.commonHeaderList(origin);
    for (let i = 0; i < list.length; i += 2) res.setHeader(list[i], list[i + 1]);
  }

  /** The pipeline's refusal (the pipeline audits its own: not again here), with CORS so a browser client can read the status. */
  respondRejection(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, rejection: Rejection): void {
    this.writeRefusal(req, res, service, ctx, rejection);
  }

  refuse(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, rejection: Rejection): void {
    this.auditReject(req, service, ctx, rejection);
    this.writeRefusal(req, res, service, ctx, rejection);
  }

  auditReject(req: IncomingMessage, service: ServiceConfig, ctx: FallbackContext, rejection: Rejection): void {
    const origin = req.headers.origin;
    ctx.audit.reject(rejection.reason, {
      service: service.name,
      client: clientOf(req),
      origin: typeof origin === 'string' ? origin.slice(0, 256) : undefined,
      transport: 'fallback',
      status: rejection.status,
      ...(rejection.detail !== undefined ? { detail: rejection.detail } : {}),
    });
  }

  corsOrigin(req: IncomingMessage, service: ServiceConfig, origin: string | null): string | null {
    return origin !== null && !origin.startsWith('invalid:') && this.originPolicy(service, origin, originRequestInfo(req)) ? origin : null;
  }

  writeRefusal(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, rejection: Rejection): void {
    if (fallbackQuery(req.url ?? '/').op === 'open') {
      ctx.metrics.handshakes.inc({ service: service.name, transport: 'fallback', outcome: 'refused', reason: rejection.reason });
    }
    if (res.headersSent) { res.destroy(); return; }
    const origin = serializeOrigin(req.headers.origin);
    const corsOrigin = typeof origin === 'string' && origin !== 'invalid' && this.originPolicy(service, origin, originRequestInfo(req)) ? origin : null;
    res.statusCode = rejection.status;
    this.commonHeaders(res, corsOrigin);
    for (const [k, v] of Object.entries(rejection.headers)) res.setHeader(k, v);
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    // A refused request's body is not read: close the connection rather than drain an attacker's upload.
    if (!req.complete) {
      res.setHeader('Connection', 'close');
      res.once('finish', lingerThenClose);
    }
    res.end(`${rejection.status} ${rejection.reason}\n`);
  }

  /** Bad input from the session's own (verified) client: answer, audit, and close it as a WebSocket would. */
  violation(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, session: FallbackSession,
    status: number, reason: string, closeCode: number, message: string): void {
    ctx.audit.violation(reason, {
      service: service.name, client: clientOf(req), transport: 'fallback', status, code: closeCode,
      connection: session.admission.id, principal: session.admission.principal?.id,
    });
    this.writeRefusal(req, res, service, ctx, new Rejection(status, reason, message));
    session.close(closeCode, message);
  }

  wireViolation(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, session: FallbackSession, error: WireError): void {
    const status = error.reason === 'message_too_big' || error.reason === 'too_many_frames' ? 413 : 400;
    this.violation(req, res, service, ctx, session, status, `fallback_${error.reason}`, error.closeCode, error.message);
  }

  /** The answer to a body that could not be read (none when the client went away). */
  bodyRefusal(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, error: BodyError, session?: FallbackSession): void {
    switch (error) {
      case 'gone': return;
      case 'timeout': this.refuse(req, res, service, ctx, new Rejection(408, 'fallback_body_timeout', 'request body not received in time')); return;
      case 'short': this.refuse(req, res, service, ctx, new Rejection(400, 'fallback_bad_body', 'request body ended too soon')); return;
      case 'over_budget':
        if (session) { this.violation(req, res, service, ctx, session, 413, 'fallback_buffer_overflow', 1008, 'too much unprocessed input'); return; }
        break;
      case 'too_big':
        if (session) { this.violation(req, res, service, ctx, session, 413, 'fallback_body_too_big', 1009, 'request body too large'); return; }
        break;
    }
    this.refuse(req, res, service, ctx, new Rejection(413, 'fallback_body_too_big', 'request body too large'));
  }
}

/** The parts of a request an origin policy needs for `self`: the connection's scheme and the Host. */
export function originRequestInfo(req: IncomingMessage): OriginRequestInfo {
  return { secure: hopOf(req)?.secure ?? (req.socket as { encrypted?: boolean }).encrypted === true, host: req.headers.host };
}

/** The client as the listener resolved it (PROXY header, trusted proxy), as the WebSocket path audits it. */
export function clientOf(req: IncomingMessage): string | undefined {
  return clientAddressOf(req)?.address ?? req.socket.remoteAddress;
}

/** How long the rest of a refused upload is read and dropped before its socket is closed. */
const LINGER_MS = 2000;

/**
 * After refusing a request whose body is still coming: drop what arrives
 * (nothing of it is kept) for a moment, so the client reads the answer before
 * the socket closes — an immediate close would reset the connection and could
 * discard the answer — then close it, whether or not the body ever ends.
 */
function lingerThenClose(this: ServerResponse): void {
  const socket = this.socket ?? this.req.socket;
  this.req.resume();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
