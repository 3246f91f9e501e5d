/**
 * The fallback's HTTP endpoints, on the same URL as the service's WebSocket
 * endpoint, told apart by the reserved query parameter `gh`:
 *
 *   POST <path>?gh=open[&<the WebSocket URL's own query>]   body: {"protocols":[...]}
 *   POST <path>?gh=stream&s=<session>&a=<ack>               → streaming response
 *   POST <path>?gh=poll&s=<session>&a=<ack>                 → long-poll response
 *   POST <path>?gh=send&s=<session>                         body: frames
 *   OPTIONS <path>                                          → CORS preflight
 *
 * Every request is POST so that browsers always send `Origin` (they omit it on
 * same-origin GETs). The open request runs the very admission pipeline the
 * WebSocket upgrade runs; every later request is checked against the service's
 * origin policy and bound to the session's origin and credentials.
 * See docs/fallback.md for the full protocol.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Admission, AdmissionRequest } from '../admission/types.js';
import { Rejection } from '../admission/types.js';
import { withProtocol } from '../admission/pipeline.js';
import type { GatehouseConfig, ServiceConfig } from '../config/schema.js';
import type { Audit } from '../observe/audit.js';
import type { Metrics } from '../observe/metrics.js';
import type { Service } from '../services/types.js';
import type { Channel, CloseInfo } from '../channel.js';
import { toAdmissionRequest, splitTarget } from './request.js';
import { clientAddressOf, hopOf, type HoppedClient } from './listener.js';
import { BackendError } from '../errors.js';
import { FallbackSession } from '../fallback/session.js';
import { decodeFrames, encodeNumber, FrameType, type WireError } from '../fallback/wire.js';
import { serializeOrigin, serviceOriginPolicy, type OriginPolicy, type OriginRequestInfo } from './fallback-origin.js';
import { serveAsset } from '../fallback/assets.js';

/** Reserved query parameter naming the fallback operation. */
export const OP_PARAM = 'gh';
/**
 * Session ids: 24 random bytes (192 bits), base64url; in a cluster followed by
 * `.` and the id of the gateway process that owns the session.
 */
const SESSION_ID = /^[A-Za-z0-9_-]{32}(?:\.([A-Za-z0-9_-]{1,24}))?$/;
const MAX_OPEN_BODY = 8 * 1024;
const KNOWN_OPS = new Set(['open', 'stream', 'poll', 'send']);
const MAX_FRAMES_PER_BODY = 4096;

/**
 * What a request is handled with: the front door's current context (swapped
 * as a whole on reload; a session keeps the service and settings it opened with).
 */
export interface FallbackContext {
  config: GatehouseConfig;
  router: { match(host: string | undefined, path: string): ServiceConfig | Rejection };
  pipeline: { admit(request: AdmissionRequest, service: ServiceConfig): Promise<Admission | Rejection> };
  services: Map<string, Service>;
  audit: Audit;
  log: Logger;
  metrics: Metrics;
}

export interface FallbackOptions {
  /** The per-request origin policy; the service's own allow-list (the admission check's rules) unless a test passes another. */
  originPolicy?: OriginPolicy;
  /**
   * The front door's channel registry: drain covers fallback sessions, and its
   * channel hooks (credential expiry, guards) run on them as on WebSocket
   * connections. When it returns a Channel (the session wrapped by in-connection
   * guards), that is what the service gets.
   */
  track?(channel: Channel, admission: Admission): Channel | void;
  untrack?(channel: Channel, info?: CloseInfo): void;
  /** Once the gateway drains, the refusal to answer an open with (no session is opened then, as no WebSocket is). */
  draining?(): Rejection | undefined;
  /** An open request is under way until `work` settles (drain waits for its answer). */
  opening?(work: Promise<void>): void;
  /**
   * Sessions of a cluster: `self` names this process in every session id it
   * makes; a request for another process's session is passed on to it with
   * `hop`: 'passed' (the owner answered, or is answering, on `res`),
   * 'owner_gone' (it is not alive or cannot be reached: its sessions ended),
   * 'owner_unknown' (where it is cannot be learnt now: the client may retry).
   */
  route?: {
    readonly self: string;
    hop(req: IncomingMessage, res: ServerResponse, owner: string, client: HoppedClient): Promise<'passed' | 'owner_gone' | 'owner_unknown'>;
  };
}

interface SessionRecord {
  session: FallbackSession;
  service: ServiceConfig;
  /** the context the session was opened in (its service, pipeline and settings) */
  ctx: FallbackContext;
  /** the Origin presented at open, serialised (null: none); every later request must present the same */
  origin: string | null;
  /** the origin CORS answers name, null when none may be named */
  corsOrigin: string | null;
  /** HMAC of the credential-bearing headers presented at open (never the values themselves) */
  credentialTag: string;
  /** a send's body is being received */
  uploading: boolean;
}

/**
 * The Origin a request presents, in the form sessions are bound with: the
 * serialised origin, null when absent, and for anything malformed a value no
 * well-formed origin can equal (so a malformed origin binds only to itself).
 */
function bindingOrigin(req: IncomingMessage): string | null {
  const o = serializeOrigin(req.headers.origin);
  if (o === 'invalid') return `invalid:${String(req.headers.origin).slice(0, 256)}`;
  return o;
}

export class FallbackEndpoints {
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly tagKey = randomBytes(32);
  private readonly originPolicy: OriginPolicy;

  constructor(private readonly opts: FallbackOptions = {}) {
    this.originPolicy = opts.originPolicy ?? serviceOriginPolicy;
  }

  get sessionCount(): number { return this.sessions.size; }

  /** For the front door's addHttpHandler: returns true when the request is the fallback's. */
  handle = (req: IncomingMessage, res: ServerResponse, ctx: FallbackContext): boolean => {
    const url = req.url ?? '/';
    const { path, query } = splitTarget(url);
    if (path.startsWith('/.gatehouse/')) return serveAsset(req, res, path, ctx.config);
    if (!url.startsWith('/')) return false;
    const routed = ctx.router.match(req.headers.host, path);
    if (routed instanceof Rejection) return false;
    const service = routed;
    if (!service.fallback) return false;
    const op = query.get(OP_PARAM);
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      this.preflight(req, res, service, ctx);
      return true;
    }
    if (op === null) return false;
    // (label values from a fixed set: a client must not be able to mint metric series)
    ctx.metrics.fallbackRequests.inc({ op: KNOWN_OPS.has(op) ? op : 'other' });
    if (req.method !== 'POST') {
      this.refuse(req, res, service, ctx, new Rejection(405, 'fallback_method', 'fallback requests use POST', { Allow: 'POST, OPTIONS' }));
      return true;
    }
    // Open sessions keep being served while draining: their 1001 travels on their own requests.
    const draining = op === 'open' ? this.opts.draining?.() : undefined;
    if (draining) {
      this.refuse(req, res, service, ctx, draining);
      return true;
    }
    const work = op === 'open' ? this.open(req, res, service, ctx, query) : this.sessionRequest(req, res, service, ctx, op, query);
    if (op === 'open') this.opts.opening?.(work);
    work.catch((err: unknown) => {
      ctx.log.error({ err, service: service.name }, 'fallback request failed');
      if (!res.headersSent) this.refuse(req, res, service, ctx, new Rejection(500, 'internal_error', 'internal error'));
      else res.destroy();
    });
    return true;
  };

  /** Close every session (gateway shutdown). */
  closeAll(code = 1001, reason = 'gateway shutting down'): void {
    for (const { session } of [...this.sessions.values()]) session.close(code, reason);
  }

  // ---- open ----------------------------------------------------------------------

  private async open(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, query: URLSearchParams): Promise<void> {
    const body = await this.readBody(req, res, service, ctx, MAX_OPEN_BODY);
    if (!body) return;
    let protocols: string[] = [];
    if (body.length > 0) {
      let parsed: unknown;
      try { parsed = JSON.parse(body.toString('utf8')); } catch { parsed = undefined; }
      const list = (parsed as { protocols?: unknown } | undefined)?.protocols;
      if (typeof parsed !== 'object' || parsed === null || (list !== undefined && (!Array.isArray(list) || !list.every((p) => typeof p === 'string')))) {
        this.refuse(req, res, service, ctx, new Rejection(400, 'fallback_bad_open', 'open body must be {"protocols":[...]}'));
        return;
      }
      protocols = (list as string[] | undefined) ?? [];
    }
    const request = this.admissionRequest(req, query, protocols);
    const outcome = await ctx.pipeline.admit(request, service);
    if (outcome instanceof Rejection) { this.respondRejection(req, res, service, ctx, outcome, false); return; }
    const admission = outcome;
    const backend = ctx.services.get(service.name);
    if (!backend) {
      admission.release();
      this.refuse(req, res, service, ctx, new Rejection(503, 'service_unavailable', 'service not available'));
      return;
    }
    let serviceSession;
    try {
      serviceSession = await backend.open(admission);
    } catch (err) {
      admission.release();
      const status = err instanceof BackendError ? err.status : 502;
      this.refuse(req, res, service, ctx, new Rejection(status, err instanceof BackendError ? err.code : 'backend_failed', 'backend unavailable'));
      return;
    }
    if (res.destroyed || req.socket.destroyed) { serviceSession.abort(); admission.release(); return; }
    // Drain began while this open waited (authentication, the backend dial): drain has closed the sessions it knew of.
    const draining = this.opts.draining?.();
    if (draining) {
      serviceSession.abort();
      admission.release();
      this.refuse(req, res, service, ctx, draining);
      return;
    }
    // As on the WebSocket path: once the service is open nothing reads the request; do not keep it.
    admission.request = undefined;
    const route = this.opts.route;
    const id = randomBytes(24).toString('base64url') + (route ? `.${route.self}` : '');
    // The session is bound to the origin this request presented (the pipeline's origin check,
    // when the service has one, has just accepted it); CORS is answered only for an allowed one.
    const boundOrigin = bindingOrigin(req);
    const corsOrigin = this.corsOrigin(req, service, boundOrigin);
    const protocol = serviceSession.protocol ?? admission.protocol;
    const settings = ctx.config.fallback;
    const session = new FallbackSession({
      id,
      admission: protocol === admission.protocol ? admission : withProtocol(admission, protocol),
      settings,
      headers: (r) => this.commonHeaders(r, corsOrigin),
      onEnd: (s, info) => {
        this.sessions.delete(s.id);
        ctx.metrics.fallbackSessions.inc({ service: service.name }, -1);
        ctx.log.debug({ connection: admission.id, service: service.name, code: info.code, initiator: info.initiator }, 'fallback session ended');
      },
    });
    this.sessions.set(id, { session, service, ctx, origin: boundOrigin, corsOrigin, credentialTag: this.credentialTag(req), uploading: false });
    ctx.metrics.fallbackSessions.inc({ service: service.name }, 1);
    // As the WebSocket path does: the front door tracks the channel (drain, expiry hooks) before the service attaches.
    const tracked = this.opts.track?.(session, session.admission);
    session.whenClosed((info) => this.opts.untrack?.(session, info));
    serviceSession.attach(tracked ?? session);
    const answer = JSON.stringify({
      session: id,
      protocol,
      extensions: '',
      heartbeat: settings.heartbeat,
      pollTimeout: settings.poll_timeout,
      maxBody: settings.max_body,
      maxMessage: service.max_message,
      maxFrames: MAX_FRAMES_PER_BODY,
      // PING is answered with PONG on the stream: the client's probe for intermediaries that delay it.
      ping: true,
    });
    res.statusCode = 200;
    this.commonHeaders(res, corsOrigin);
    res.setHeader('Content-Type', 'application/json');
    res.end(answer);
  }

  /**
   * The AdmissionRequest of an open: the request as sent, minus our reserved
   * parameter, with the offered subprotocols where the WebSocket path has them
   * (browsers may not set Sec-* headers on fetch, so they travel in the body).
   */
  private admissionRequest(req: IncomingMessage, query: URLSearchParams, protocols: readonly string[]): AdmissionRequest {
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

  // ---- session requests ------------------------------------------------------------

  private async sessionRequest(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, op: string, query: URLSearchParams): Promise<void> {
    if (op !== 'stream' && op !== 'poll' && op !== 'send') {
      this.refuse(req, res, service, ctx, new Rejection(400, 'fallback_bad_op', 'unknown fallback operation'));
      return;
    }
    const sid = query.get('s') ?? '';
    const valid = SESSION_ID.exec(sid);
    if (!valid) {
      this.refuse(req, res, service, ctx, new Rejection(400, 'fallback_bad_session_id', 'malformed session id'));
      return;
    }
    const owner = valid[1];
    // (A hop is passed on once: one that reached the wrong process finds no session here.)
    if (owner !== undefined && this.opts.route && owner !== this.opts.route.self && !hopOf(req)) {
      // Another process's session: it decides (origin, credentials, sequence). A gone owner ended its sessions.
      const outcome = await this.opts.route.hop(req, res, owner, hoppedClient(req));
      ctx.metrics.fallbackHops.inc({ outcome });
      if (outcome === 'passed') return;
      this.refuse(req, res, service, ctx, outcome === 'owner_gone'
        ? new Rejection(404, 'fallback_unknown_session', 'no such session')
        : new Rejection(503, 'fallback_owner_unknown', 'the session cannot be reached now', { 'Retry-After': '1' }));
      return;
    }
    const record = this.sessions.get(sid);
    // A session of another service is as unknown as a made-up one.
    if (!record || record.service.name !== service.name || record.session.closed) {
      this.refuse(req, res, service, ctx, new Rejection(404, 'fallback_unknown_session', 'no such session'));
      return;
    }
    const { session } = record;
    const origin = bindingOrigin(req);
    if (origin !== record.origin || (origin !== null && !this.originPolicy(service, origin, originRequestInfo(req)))) {
      this.refuse(req, res, service, ctx, new Rejection(403, 'fallback_origin_mismatch', 'origin does not match the session'));
      return;
    }
    if (!(await this.sameCredentials(req, res, service, ctx, record))) return;

    if (op === 'stream' || op === 'poll') {
      const ack = Number(query.get('a') ?? '0');
      if (!Number.isSafeInteger(ack) || ack < 0 || !session.acknowledge(ack)) {
        this.violation(req, res, service, ctx, session, 400, 'fallback_bad_ack', 1002, 'acknowledgement of a message never sent');
        return;
      }
      if (session.closed) { this.refuse(req, res, service, ctx, new Rejection(404, 'fallback_unknown_session', 'no such session')); return; }
      if (!session.attachDownstream(res, op)) {
        this.violation(req, res, service, ctx, session, 429, 'fallback_resend_limit', 1008, 'too much re-sent without acknowledgement');
        session.end(1008, 'too much re-sent without acknowledgement');
      }
      return;
    }

    // One upload at a time per session: its body is the one whose bytes the session's budget counts as they arrive.
    if (record.uploading) {
      this.refuse(req, res, service, ctx, new Rejection(409, 'fallback_send_busy', 'another send of this session is being received'));
      return;
    }
    record.uploading = true;
    let body: Buffer | undefined;
    try {
      body = await this.readBody(req, res, service, ctx, ctx.config.fallback.max_body, session);
    } finally {
      record.uploading = false;
    }
    if (!body) return;
    const { frames, error } = decodeFrames(body, { maxMessage: service.max_message, maxFrames: MAX_FRAMES_PER_BODY });
    if (error) {
      // What came before the bad frame is delivered, as on a WebSocket connection; then the session closes.
      session.receive(frames, () => undefined);
      this.wireViolation(req, res, service, ctx, session, error);
      return;
    }
    const accepted = session.receive(frames, () => {
      if (res.writableEnded || res.destroyed) return;
      const parts = [encodeNumber(FrameType.ACK, session.acknowledged)];
      const echo = session.closeEcho();
      if (echo) parts.push(echo);
      const out = Buffer.concat(parts);
      res.statusCode = 200;
      this.commonHeaders(res, record.corsOrigin);
      res.setHeader('Content-Type', 'application/octet-stream');
      res.setHeader('Content-Length', out.length);
      res.end(out);
    });
    if (accepted === 'gap') this.violation(req, res, service, ctx, session, 400, 'fallback_sequence_gap', 1002, 'messages out of sequence');
    else if (accepted === 'overflow') this.violation(req, res, service, ctx, session, 413, 'fallback_buffer_overflow', 1008, 'too much unprocessed input');
  }

  /**
   * Same credentials as at open? The fast path compares an HMAC of the
   * credential-bearing headers; when they changed (a refreshed cookie, or
   * someone else's), the request is admitted afresh and must name the same
   * principal. A request without the credentials gets the pipeline's own answer
   * (401 with its challenge); one with another principal's gets 403.
   */
  private async sameCredentials(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, record: SessionRecord): Promise<boolean> {
    const tag = this.credentialTag(req);
    if (tag === record.credentialTag) return true;
    const request = this.admissionRequest(req, new URLSearchParams(), record.session.admission.offeredProtocols);
    const outcome = await ctx.pipeline.admit(request, service);
    if (outcome instanceof Rejection) { this.respondRejection(req, res, service, ctx, outcome, true); return false; }
    outcome.release(); // only the identity was wanted, not another connection slot
    const before = record.session.admission.principal;
    const now = outcome.principal;
    if (before?.id !== now?.id || before?.method !== now?.method) {
      this.refuse(req, res, service, ctx, new Rejection(403, 'fallback_principal_mismatch', 'credentials do not match the session'));
      return false;
    }
    record.credentialTag = tag;
    return true;
  }

  private credentialTag(req: IncomingMessage): string {
    const h = createHmac('sha256', this.tagKey);
    h.update(String(req.headers.authorization ?? ''));
    h.update('\0');
    h.update(String(req.headers.cookie ?? ''));
    return h.digest('base64url');
  }

  // ---- CORS, headers, refusals -----------------------------------------------------

  private preflight(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext): void {
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
   * Headers on every fallback answer: never cached or sniffed, and CORS only
   * for an origin the service allows — echoed exactly, with credentials, never `*`.
   */
  private commonHeaders(res: ServerResponse, origin: string | null): void {
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Vary', 'Origin, Cookie');
    if (origin !== null) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Expose-Headers', 'WWW-Authenticate');
    }
  }

  /** The pipeline's refusal (already audited by the pipeline), with CORS so a browser client can read the status. */
  private respondRejection(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, rejection: Rejection, audit: boolean): void {
    if (audit) this.auditReject(req, service, ctx, rejection);
    this.writeRefusal(req, res, service, ctx, rejection);
  }

  private refuse(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, rejection: Rejection): void {
    this.auditReject(req, service, ctx, rejection);
    this.writeRefusal(req, res, service, ctx, rejection);
  }

  private auditReject(req: IncomingMessage, service: ServiceConfig, ctx: FallbackContext, rejection: Rejection): void {
    const origin = req.headers.origin;
    ctx.audit.reject(rejection.reason, {
      service: service.name,
      client: clientOf(req),
      origin: typeof origin === 'string' ? origin.slice(0, 256) : undefined,
      transport: 'fallback',
      status: rejection.status,
    });
  }

  private corsOrigin(req: IncomingMessage, service: ServiceConfig, origin: string | null): string | null {
    return origin !== null && !origin.startsWith('invalid:') && this.originPolicy(service, origin, originRequestInfo(req)) ? origin : null;
  }

  private writeRefusal(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, rejection: Rejection): void {
    if (splitTarget(req.url ?? '/').query.get(OP_PARAM) === 'open') {
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
  private violation(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, session: FallbackSession,
    status: number, reason: string, closeCode: number, message: string): void {
    ctx.audit.violation(reason, {
      service: service.name, client: clientOf(req), transport: 'fallback', status, code: closeCode,
      connection: session.admission.id, principal: session.admission.principal?.id,
    });
    this.writeRefusal(req, res, service, ctx, new Rejection(status, reason, message));
    session.close(closeCode, message);
  }

  private wireViolation(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, session: FallbackSession, error: WireError): void {
    const status = error.reason === 'message_too_big' || error.reason === 'too_many_frames' ? 413 : 400;
    this.violation(req, res, service, ctx, session, status, `fallback_${error.reason}`, error.closeCode, error.message);
  }

  /**
   * Read a request body of at most `limit` bytes: 413 when larger (decided from
   * Content-Length when present), 408 when it does not arrive in time.
   * Returns undefined when the request has been answered.
   */
  private readBody(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, limit: number, session?: FallbackSession): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const tooBig = (): void => {
        if (session) this.violation(req, res, service, ctx, session, 413, 'fallback_body_too_big', 1009, 'request body too large');
        else this.refuse(req, res, service, ctx, new Rejection(413, 'fallback_body_too_big', 'request body too large'));
        resolve(undefined);
      };
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > limit) { tooBig(); return; }
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        this.refuse(req, res, service, ctx, new Rejection(408, 'fallback_body_timeout', 'request body not received in time'));
        resolve(undefined);
      }, ctx.config.fallback.request_timeout);
      timer.unref?.();
      // Held input and this body together stay within the session's budget, checked as the bytes arrive.
      const budget = session ? ctx.config.fallback.max_buffer + ctx.config.fallback.max_body : Infinity;
      req.on('data', (chunk: Buffer) => {
        if (done) return;
        size += chunk.length;
        if (size > limit) { done = true; clearTimeout(timer); tooBig(); return; }
        if (session && session.inboundBuffered + size > budget) {
          done = true;
          clearTimeout(timer);
          this.violation(req, res, service, ctx, session, 413, 'fallback_buffer_overflow', 1008, 'too much unprocessed input');
          resolve(undefined);
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
      });
      // The client gave up (or the socket broke) before the end: the session's one upload is free again.
      const gone = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(undefined);
      };
      req.on('error', gone);
      req.on('close', gone);
    });
  }
}

/** The client as this process resolved it, for the session's owner (a hop's own hop keeps the first's view). */
function hoppedClient(req: IncomingMessage): HoppedClient {
  const hop = hopOf(req);
  if (hop) return hop;
  const request = toAdmissionRequest(req, 'fallback');
  return { address: request.remoteAddress, port: request.remotePort, secure: request.secure, ...(request.tls ? { tls: request.tls } : {}) };
}

/** The parts of a request an origin policy needs for `self`: the connection's scheme and the Host. */
function originRequestInfo(req: IncomingMessage): OriginRequestInfo {
  return { secure: hopOf(req)?.secure ?? (req.socket as { encrypted?: boolean }).encrypted === true, host: req.headers.host };
}

/** The client as the listener resolved it (PROXY header, trusted proxy), as the WebSocket path audits it. */
function clientOf(req: IncomingMessage): string | undefined {
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
