/**
 * A fallback session's binding to the credentials it was opened with, and the
 * AdmissionRequest a fallback request is checked as. The session remembers an
 * HMAC (per-process key) of the credential-bearing headers (`Authorization`,
 * `Cookie`) of its open request, never the values; each later request's tag
 * is compared with it, and a request whose headers changed is checked afresh.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Admission, AdmissionRequest } from '../admission/types.js';
import { Rejection } from '../admission/types.js';
import type { ServiceConfig } from '../config/schema.js';
import type { FallbackAnswers } from './fallback-answers.js';
import type { FallbackContext } from './fallback-context.js';
import { OP_PARAM } from './fallback-query.js';
import { toAdmissionRequest } from './request.js';

/** What of a session the binding reads and updates. */
export interface BoundSession {
  /** the tag of the credentials the session is bound to now */
  credentialTag: string;
  readonly session: { readonly admission: Admission };
}

/**
 * The AdmissionRequest of an open: the request as sent, minus our reserved
 * parameter, with the offered subprotocols where the WebSocket path has them
 * (browsers may not set Sec-* headers on fetch, so they travel in the body).
 */
export function fallbackAdmissionRequest(req: IncomingMessage, query: URLSearchParams, protocols: readonly string[]): AdmissionRequest {
  const request = toAdmissionRequest(req, 'fallback');
  const own = new URLSearchParams(query);
  own.delete(OP_PARAM);
  const qs = own.toString();
  // Both views of the headers, as checks read either: the parsed object and the raw name/value list.
  const headers = { ...request.headers };
  delete headers['sec-websocket-protocol'];
  const rawHeaders: string[] = [];
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    if (request.rawHeaders[i].toLowerCase() !== 'sec-websocket-protocol') rawHeaders.push(request.rawHeaders[i], request.rawHeaders[i + 1]);
  }
  if (protocols.length > 0) {
    headers['sec-websocket-protocol'] = protocols.join(', ');
    rawHeaders.push('Sec-WebSocket-Protocol', headers['sec-websocket-protocol']);
  }
  return { ...request, url: request.path + (qs ? `?${qs}` : ''), query: own, headers, rawHeaders };
}

export class CredentialBinding {
  private readonly key = randomBytes(32);
  /** The tag of a request without credential-bearing headers (most requests of a session opened without any): computed once. */
  private readonly noneTag: string;

  constructor(private readonly answers: FallbackAnswers) {
    this.noneTag = this.tagOf('', '');
  }

  /**
   * Same credentials as at open? The fast path compares an HMAC of the
   * credential-bearing headers; when they changed (a refreshed cookie, or
   * someone else's), the credential is checked afresh — by the pipeline
   * without the door's counters, as the session already holds its slot — and
   * must name the same principal. A request without the credentials gets the
   * pipeline's own answer (401 with its challenge); one with another
   * principal's gets 403. A session whose credential was the open request's
   * own (a ticket, a token in the query or a subprotocol entry) has nothing
   * in the headers to re-check: its key binds it, and a cookie it never used
   * is not its credential.
   */
  same(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, record: BoundSession): true | Promise<boolean> {
    if (record.session.admission.principal?.carrier === 'request') return true;
    const tag = this.tag(req);
    if (tag === record.credentialTag) return true;
    return this.recheck(req, res, service, ctx, record, tag);
  }

  /** The credential-bearing headers changed: check them afresh (see `same`). */
  private async recheck(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext,
    record: BoundSession, tag: string): Promise<boolean> {
    const request = fallbackAdmissionRequest(req, new URLSearchParams(), record.session.admission.offeredProtocols);
    const outcome = await ctx.credentials.admit(request, service);
    if (outcome instanceof Rejection) { this.answers.respondRejection(req, res, service, ctx, outcome); return false; }
    outcome.release(); // only the identity was wanted (nothing was reserved: no connection check ran)
    const before = record.session.admission.principal;
    const now = outcome.principal;
    if (before?.id !== now?.id || before?.method !== now?.method) {
      this.answers.refuse(req, res, service, ctx, new Rejection(403, 'fallback_principal_mismatch', 'credentials do not match the session'));
      return false;
    }
    record.credentialTag = tag;
    return true;
  }

  /** The HMAC of a request's credential-bearing headers (the same for none as for empty ones: computed once). */
  tag(req: IncomingMessage): string {
    const { authorization, cookie } = req.headers;
    if (authorization === undefined && cookie === undefined) return this.noneTag;
    return this.tagOf(String(authorization ?? ''), String(cookie ?? ''));
  }

  private tagOf(authorization: string, cookie: string): string {
    const h = createHmac('sha256', this.key);
    h.update(authorization);
    h.update('\0');
    h.update(cookie);
    return h.digest('base64url');
  }
}
