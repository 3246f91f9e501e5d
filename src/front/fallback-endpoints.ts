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
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Admission } from '../admission/types.js';
import { Rejection } from '../admission/types.js';
import { withProtocol } from '../admission/pipeline.js';
import type { ServiceConfig } from '../config/schema.js';
import type { Channel, CloseInfo } from '../channel.js';
import { toAdmissionRequest, splitTarget, targetPath } from './request.js';
import { hopOf, type HoppedClient } from './listener.js';
import { BackendError } from '../errors.js';
import { FallbackSession } from '../fallback/session.js';
import { decodeFrames, encodeNumber, FrameType, KEY_FRAME_BYTES, keyOf, SESSION_KEY_BYTES } from '../fallback/wire.js';
import { RequestBody, type BodyError } from './fallback-body.js';
import { clientOf, FallbackAnswers, originRequestInfo } from './fallback-answers.js';
import { fallbackQuery, OP_PARAM, type FallbackQuery } from './fallback-query.js';
import { CredentialBinding, fallbackAdmissionRequest } from './fallback-credentials.js';
import { UnboundRequests } from './fallback-unbound.js';
import type { FallbackContext } from './fallback-context.js';
import { serializeOrigin, serviceOriginPolicy, type OriginPolicy } from './fallback-origin.js';
import { serveAsset } from '../fallback/assets.js';
import type { Metrics } from '../observe/metrics.js';
import type { Series } from '../observe/metric-family.js';

export { OP_PARAM };
export type { FallbackContext };

/**
 * Session ids: 24 random bytes (192 bits), base64url; in a cluster followed by
 * `.` and the id of the gateway process that owns the session.
 */
const SESSION_ID = /^[A-Za-z0-9_-]{32}(?:\.([A-Za-z0-9_-]{1,24}))?$/;
const MAX_OPEN_BODY = 8 * 1024;
const KNOWN_OPS = ['open', 'stream', 'poll', 'send', 'other'] as const;
type OpLabel = (typeof KNOWN_OPS)[number];
const MAX_FRAMES_PER_BODY = 4096;

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
   * 'owner_gone' (no connection to it can be made: its sessions ended),
   * 'owner_unknown' (where it is cannot be learnt now, or the connection to it
   * broke before it answered: the client may retry).
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
  /** HMAC of the credential-bearing headers presented at open (never the values themselves): see fallback-credentials.ts */
  credentialTag: string;
  /** a send's body is being received */
  uploading: boolean;
  /** the secret the open answer gave the client; every request's body starts with it */
  key: Buffer;
  /** the answer to a send: the session's headers, the type, and the length (set per answer) */
  replyHeaders: string[];
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
  private readonly originPolicy: OriginPolicy;
  private readonly answers: FallbackAnswers;
  private readonly unbound = new UnboundRequests();
  private readonly credentials: CredentialBinding;
  /** The request counter's series per operation (per Metrics: a test may give each gateway its own). */
  private readonly requestSeries = new WeakMap<Metrics, Record<OpLabel, Series>>();

  constructor(private readonly opts: FallbackOptions = {}) {
    this.originPolicy = opts.originPolicy ?? serviceOriginPolicy;
    this.answers = new FallbackAnswers(this.originPolicy);
    this.credentials = new CredentialBinding(this.answers);
  }

  get sessionCount(): number { return this.sessions.size; }

  /** Client addresses with requests not yet bound to a slot (fallback-unbound.ts). */
  get unboundAddresses(): number { return this.unbound.size; }

  /** For the front door's addHttpHandler: returns true when the request is the fallback's. */
  handle = (req: IncomingMessage, res: ServerResponse, ctx: FallbackContext): boolean => {
    const url = req.url ?? '/';
    const path = targetPath(url);
    if (path.startsWith('/.gatehouse/')) return serveAsset(req, res, path, ctx.config);
    if (!url.startsWith('/')) return false;
    const routed = ctx.router.match(req.headers.host, path);
    if (routed instanceof Rejection) return false;
    const service = routed;
    if (!service.fallback) return false;
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined) {
      this.answers.preflight(req, res, service, ctx);
      return true;
    }
    const query = fallbackQuery(url);
    const op = query.op;
    if (op === null) return false;
    this.countRequest(ctx.metrics, op);
    if (req.method !== 'POST') {
      this.answers.refuse(req, res, service, ctx, new Rejection(405, 'fallback_method', 'fallback requests use POST', { Allow: 'POST, OPTIONS' }));
      return true;
    }
    // Open sessions keep being served while draining: their 1001 travels on their own requests.
    const draining = op === 'open' ? this.opts.draining?.() : undefined;
    if (draining) {
      this.answers.refuse(req, res, service, ctx, draining);
      return true;
    }
    const work = op === 'open' ? this.open(req, res, service, ctx, splitTarget(url).query) : this.sessionRequest(req, res, service, ctx, op, query);
    if (op === 'open') this.opts.opening?.(work);
    work.catch((err: unknown) => {
      ctx.log.error({ err, service: service.name }, 'fallback request failed');
      if (!res.headersSent) this.answers.refuse(req, res, service, ctx, new Rejection(500, 'internal_error', 'internal error'));
      else res.destroy();
    });
    return true;
  };

  /** Counts a request by operation: label values from a fixed set (a client must not be able to mint metric series). */
  private countRequest(metrics: Metrics, op: string): void {
    let series = this.requestSeries.get(metrics);
    if (series === undefined) {
      const family = metrics.fallbackRequests;
      series = Object.fromEntries(KNOWN_OPS.map((o) => [o, family.series({ op: o })])) as Record<OpLabel, Series>;
      this.requestSeries.set(metrics, series);
    }
    series[op === 'open' || op === 'stream' || op === 'poll' || op === 'send' ? op : 'other'].value++;
  }

  /** Close every session (gateway shutdown). */
  closeAll(code = 1001, reason = 'gateway shutting down'): void {
    for (const { session } of [...this.sessions.values()]) session.close(code, reason);
  }

  // ---- open ----------------------------------------------------------------------

  private async open(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, query: URLSearchParams): Promise<void> {
    // Counted until the pipeline has decided: then the admission holds the session's slot.
    const unbound = this.countUnbound(req, res, service, ctx);
    if (!unbound) return;
    const reader = new RequestBody(req, ctx.config.fallback.request_timeout);
    const body = reader.declaredOver(MAX_OPEN_BODY) ? 'too_big' : await reader.rest(MAX_OPEN_BODY);
    if (typeof body === 'string') { reader.done(); this.answers.bodyRefusal(req, res, service, ctx, body); return; }
    let protocols: string[] = [];
    if (body.length > 0) {
      let parsed: unknown;
      try { parsed = JSON.parse(body.toString('utf8')); } catch { parsed = undefined; }
      const list = (parsed as { protocols?: unknown } | undefined)?.protocols;
      if (typeof parsed !== 'object' || parsed === null || (list !== undefined && (!Array.isArray(list) || !list.every((p) => typeof p === 'string')))) {
        this.answers.refuse(req, res, service, ctx, new Rejection(400, 'fallback_bad_open', 'open body must be {"protocols":[...]}'));
        return;
      }
      protocols = (list as string[] | undefined) ?? [];
    }
    const request = fallbackAdmissionRequest(req, query, protocols);
    const outcome = await ctx.pipeline.admit(request, service);
    unbound();
    if (outcome instanceof Rejection) { this.answers.respondRejection(req, res, service, ctx, outcome); return; }
    const admission = outcome;
    const backend = ctx.services.get(service.name);
    if (!backend) {
      admission.release();
      this.answers.refuse(req, res, service, ctx, new Rejection(503, 'service_unavailable', 'service not available'));
      return;
    }
    let serviceSession;
    try {
      serviceSession = await backend.open(admission);
    } catch (err) {
      admission.release();
      const status = err instanceof BackendError ? err.status : 502;
      this.answers.refuse(req, res, service, ctx, new Rejection(status, err instanceof BackendError ? err.code : 'backend_failed', 'backend unavailable'));
      return;
    }
    if (res.destroyed || req.socket.destroyed) { serviceSession.abort(); admission.release(); return; }
    // Drain began while this open waited (authentication, the backend dial): drain has closed the sessions it knew of.
    const draining = this.opts.draining?.();
    if (draining) {
      serviceSession.abort();
      admission.release();
      this.answers.refuse(req, res, service, ctx, draining);
      return;
    }
    // As on the WebSocket path: once the service is open nothing reads the request; do not keep it.
    admission.request = undefined;
    const route = this.opts.route;
    const id = randomBytes(24).toString('base64url') + (route ? `.${route.self}` : '');
    // The session is bound to the origin this request presented (the pipeline's origin check,
    // when the service has one, has just accepted it); CORS is answered only for an allowed one.
    const boundOrigin = bindingOrigin(req);
    const corsOrigin = this.answers.corsOrigin(req, service, boundOrigin);
    const protocol = serviceSession.protocol ?? admission.protocol;
    const settings = ctx.config.fallback;
    const session = new FallbackSession({
      id,
      admission: protocol === admission.protocol ? admission : withProtocol(admission, protocol),
      settings,
      headers: this.answers.commonHeaderList(corsOrigin),
      draining: () => this.opts.draining?.() !== undefined,
      onEnd: (s, info) => {
        this.sessions.delete(s.id);
        ctx.metrics.fallbackSessions.inc({ service: service.name }, -1);
        ctx.log.debug({ connection: admission.id, service: service.name, code: info.code, initiator: info.initiator }, 'fallback session ended');
      },
    });
    // The session's key: every later request carries it in its body (never in the URL, so never in a log).
    const key = randomBytes(SESSION_KEY_BYTES);
    const replyHeaders = [...this.answers.commonHeaderList(corsOrigin), 'Content-Type', 'application/octet-stream', 'Content-Length', ''];
    this.sessions.set(id, { session, service, ctx, origin: boundOrigin, corsOrigin, credentialTag: this.credentials.tag(req), uploading: false, key, replyHeaders });
    ctx.metrics.fallbackSessions.inc({ service: service.name }, 1);
    // As the WebSocket path does: the front door tracks the channel (drain, expiry hooks) before the service attaches.
    const tracked = this.opts.track?.(session, session.admission);
    session.whenClosed((info) => this.opts.untrack?.(session, info));
    serviceSession.attach(tracked ?? session);
    const answer = JSON.stringify({
      session: id,
      key: key.toString('base64url'),
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
    this.answers.commonHeaders(res, corsOrigin);
    res.setHeader('Content-Type', 'application/json');
    res.end(answer);
  }

  // ---- session requests ------------------------------------------------------------

  /**
   * A stream, poll or send. Each step that can be answered from what has
   * already arrived is taken without awaiting (a request's whole body usually
   * comes with its head): one await per request, not one per step.
   */
  private async sessionRequest(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext, op: string, query: FallbackQuery): Promise<void> {
    if (op !== 'stream' && op !== 'poll' && op !== 'send') {
      this.answers.refuse(req, res, service, ctx, new Rejection(400, 'fallback_bad_op', 'unknown fallback operation'));
      return;
    }
    const sid = query.session ?? '';
    const valid = SESSION_ID.exec(sid);
    if (!valid) {
      this.answers.refuse(req, res, service, ctx, new Rejection(400, 'fallback_bad_session_id', 'malformed session id'));
      return;
    }
    const owner = valid[1];
    // (A hop is passed on once: one that reached the wrong process finds no session here.)
    if (owner !== undefined && this.opts.route && owner !== this.opts.route.self && !hopOf(req)) {
      // Another process's session: it decides (origin, credentials, sequence). A gone owner ended its sessions.
      const outcome = await this.opts.route.hop(req, res, owner, hoppedClient(req));
      ctx.metrics.fallbackHops.inc({ outcome });
      if (outcome === 'passed') return;
      this.answers.refuse(req, res, service, ctx, outcome === 'owner_gone'
        ? new Rejection(404, 'fallback_unknown_session', 'no such session')
        : new Rejection(503, 'fallback_owner_unknown', 'the session cannot be reached now', { 'Retry-After': '1' }));
      return;
    }
    const record = this.sessions.get(sid);
    // A session of another service is as unknown as a made-up one.
    if (!record || record.service.name !== service.name || record.session.closed) {
      this.answers.refuse(req, res, service, ctx, new Rejection(404, 'fallback_unknown_session', 'no such session'));
      return;
    }
    const { session } = record;
    const origin = bindingOrigin(req);
    if (origin !== record.origin || (origin !== null && !this.originPolicy(service, origin, originRequestInfo(req)))) {
      this.answers.refuse(req, res, service, ctx, new Rejection(403, 'fallback_origin_mismatch', 'origin does not match the session'));
      return;
    }
    // The session's key comes first in the body: a request without it is refused before more of it is read.
    // Until it has shown the key, the request is no session's and is counted by its address.
    const unbound = this.countUnbound(req, res, service, ctx);
    if (!unbound) return;
    const reader = new RequestBody(req, ctx.config.fallback.request_timeout);
    let prefix = reader.prefix(KEY_FRAME_BYTES);
    if (prefix instanceof Promise) prefix = await prefix;
    if (typeof prefix === 'string' && prefix !== 'short') { reader.done(); this.answers.bodyRefusal(req, res, service, ctx, prefix); return; }
    const key = typeof prefix === 'string' ? undefined : keyOf(prefix);
    if (!key || !timingSafeEqual(key, record.key)) {
      reader.done();
      this.answers.refuse(req, res, service, ctx, new Rejection(403, 'fallback_session_key', 'the session key is missing or wrong'));
      return;
    }
    unbound();
    const same = this.credentials.same(req, res, service, ctx, record);
    if (same !== true && !(await same)) { reader.done(); return; }

    if (op === 'stream' || op === 'poll') {
      let rest = reader.rest(0);
      if (rest instanceof Promise) rest = await rest;
      if (typeof rest === 'string') { this.answers.bodyRefusal(req, res, service, ctx, rest); return; }
      const ack = Number(query.ack ?? '0');
      if (!Number.isSafeInteger(ack) || ack < 0 || !session.acknowledge(ack)) {
        this.answers.violation(req, res, service, ctx, session, 400, 'fallback_bad_ack', 1002, 'acknowledgement of a message never sent');
        return;
      }
      if (session.closed) { this.answers.refuse(req, res, service, ctx, new Rejection(404, 'fallback_unknown_session', 'no such session')); return; }
      if (!session.attachDownstream(res, op)) {
        this.answers.violation(req, res, service, ctx, session, 429, 'fallback_resend_limit', 1008, 'too much re-sent without acknowledgement');
        session.end(1008, 'too much re-sent without acknowledgement');
      }
      return;
    }

    // One upload at a time per session: its body is the one whose bytes the session's budget counts as they arrive.
    if (record.uploading) {
      reader.done();
      this.answers.refuse(req, res, service, ctx, new Rejection(409, 'fallback_send_busy', 'another send of this session is being received'));
      return;
    }
    const settings = ctx.config.fallback;
    record.uploading = true;
    let body: Buffer | BodyError | Promise<Buffer | BodyError>;
    try {
      body = reader.declaredOver(settings.max_body)
        ? 'too_big'
        // Held input and this body together stay within the session's budget, checked as the bytes arrive.
        : reader.rest(settings.max_body - KEY_FRAME_BYTES, settings.max_buffer + settings.max_body, session);
      if (body instanceof Promise) body = await body;
    } finally {
      record.uploading = false;
    }
    if (typeof body === 'string') { reader.done(); this.answers.bodyRefusal(req, res, service, ctx, body, session); return; }
    const { frames, error } = decodeFrames(body, { maxMessage: service.max_message, maxFrames: MAX_FRAMES_PER_BODY });
    if (error) {
      // What came before the bad frame is delivered, as on a WebSocket connection; then the session closes.
      session.receive(frames, () => undefined);
      this.answers.wireViolation(req, res, service, ctx, session, error);
      return;
    }
    const accepted = session.receive(frames, () => {
      if (res.writableEnded || res.destroyed) return;
      const ack = encodeNumber(FrameType.ACK, session.acknowledged);
      const echo = session.closeEcho();
      const out = echo ? Buffer.concat([ack, echo]) : ack;
      const headers = record.replyHeaders;
      headers[headers.length - 1] = String(out.length);
      res.writeHead(200, headers);
      res.end(out);
    });
    if (accepted === 'gap') this.answers.violation(req, res, service, ctx, session, 400, 'fallback_sequence_gap', 1002, 'messages out of sequence');
    else if (accepted === 'overflow') this.answers.violation(req, res, service, ctx, session, 413, 'fallback_buffer_overflow', 1008, 'too much unprocessed input');
  }

  /** Counts a request not yet bound to a slot (see fallback-unbound.ts); refuses it (429) when its address has too many. */
  private countUnbound(req: IncomingMessage, res: ServerResponse, service: ServiceConfig, ctx: FallbackContext): (() => void) | undefined {
    const limits = ctx.config.limits;
    const release = this.unbound.enter(res, hopOf(req)?.address ?? clientOf(req), limits);
    if (!release) {
      this.answers.refuse(req, res, service, ctx, new Rejection(429, 'fallback_too_many_requests', 'too many requests from this address',
        { 'Retry-After': '5' }, `limits.connections_per_address = ${limits.connections_per_address}`));
    }
    return release;
  }

}

/** The client as this process resolved it, for the session's owner (a hop's own hop keeps the first's view). */
function hoppedClient(req: IncomingMessage): HoppedClient {
  const hop = hopOf(req);
  if (hop) return hop;
  const request = toAdmissionRequest(req, 'fallback');
  return { address: request.remoteAddress, port: request.remotePort, secure: request.secure, ...(request.tls ? { tls: request.tls } : {}) };
}
