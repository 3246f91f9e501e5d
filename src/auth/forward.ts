/**
 * `forward`: reuse an existing web app's login (like nginx auth_request). The
 * request's Cookie and Authorization go to the app's auth URL; a 2xx admits
 * with the user id and roles from configured response headers, 401 / 403 pass
 * through (with the app's WWW-Authenticate), anything else — a timeout, a
 * refused connection, a 5xx — is 503.
 *
 * Answers are cached briefly, keyed by a SHA-256 of the credentials (the
 * credentials themselves are never kept as keys or logged). Each admitted
 * principal carries a re-check so open connections are closed when the
 * session is revoked (see expiry.ts).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AdmissionContext, Principal } from '../admission/types.js';
import type { ForwardMethodConfig } from '../config/auth.js';
import { findAuthorization, findCookie } from './credentials.js';
import { recheckBuilderKey, setRecheck, type CredentialRecheck, type RecheckBuilder, type RecheckResult } from './recheck.js';
import { forbidden, unauthorized, unavailable } from './rejections.js';
import { NONE, type AuthOutcome, type Authenticator } from './types.js';

export type ForwardAnswer =
  | { kind: 'allow'; user: string; roles: string[] }
  | { kind: 'deny'; status: 401 | 403; challenge?: string }
  | { kind: 'error'; reason: string };

const MAX_CACHE_ENTRIES = 10_000;
const MAX_HEADER_VALUE = 4096;

export class ForwardAuthenticator implements Authenticator {
  readonly method = 'forward';
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly cache = new Map<string, { answer: ForwardAnswer; until: number }>();

  constructor(private readonly config: ForwardMethodConfig, private readonly serviceName: string, builders?: Map<string, RecheckBuilder>) {
    this.url = new URL(config.url);
    const Agent = this.url.protocol === 'https:' ? https.Agent : http.Agent;
    this.agent = new Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16 });
    // A ticket issued to a forward principal may be redeemed in another process: its re-check is rebuilt here.
    builders?.set(recheckBuilderKey(serviceName, 'forward'), (principal, data) => (this.config.revalidate > 0
      ? this.recheckFor(principal, data.cookie, data.authorization, data.path ?? '/') : undefined));
  }

  /** The re-check of a principal this method admitted with these credentials. */
  private recheckFor(principal: Principal, cookie: string | undefined, authorization: string | undefined, path: string): CredentialRecheck {
    const data: Record<string, string> = { path };
    if (cookie !== undefined) data.cookie = cookie;
    if (authorization !== undefined) data.authorization = authorization;
    return {
      interval: this.config.revalidate,
      recheck: () => this.recheck(principal, cookie, authorization, path),
      portable: { method: 'forward', data },
    };
  }

  async authenticate(ctx: AdmissionContext): Promise<AuthOutcome> {
    const auth = findAuthorization(ctx.request);
    if (auth.kind === 'duplicate') return { kind: 'refused', rejection: unauthorized('credentials_ambiguous'), failed: true };
    let cookie = typeof ctx.request.headers.cookie === 'string' ? ctx.request.headers.cookie : undefined;
    if (this.config.cookie !== undefined) {
      const c = findCookie(ctx.request, this.config.cookie);
      if (c.kind === 'absent') return NONE;
      if (c.kind === 'ambiguous') return { kind: 'refused', rejection: unauthorized('cookie_ambiguous'), failed: true };
    } else if (cookie === undefined && auth.kind === 'absent') {
      return NONE;
    }
    const authorization = typeof ctx.request.headers.authorization === 'string' ? ctx.request.headers.authorization : undefined;
    if (cookie === '') cookie = undefined;

    // Only these three are kept for revalidation (not the request: it is
    // released once the connection is open).
    const path = ctx.request.path;
    const answer = await this.answerFor(cookie, authorization, path);
    switch (answer.kind) {
      case 'error':
        return { kind: 'refused', rejection: unavailable(answer.reason), failed: false };
      case 'deny':
        return {
          kind: 'refused',
          rejection: answer.status === 403 ? forbidden('forward_forbidden') : unauthorized('forward_denied', answer.challenge),
          failed: true,
        };
      case 'allow': {
        const principal: Principal = { id: answer.user, roles: answer.roles, claims: {}, method: 'forward' };
        if (this.config.revalidate > 0) setRecheck(principal, this.recheckFor(principal, cookie, authorization, path));
        return { kind: 'ok', principal };
      }
    }
  }

  /** Asks again, bypassing the cache (a revoked session must be seen), and refreshes the cache. */
  private async recheck(principal: Principal, cookie: string | undefined, authorization: string | undefined, path: string): Promise<RecheckResult> {
    const answer = await this.ask(cookie, authorization, path);
    if (answer.kind === 'error') return 'unknown';
    this.remember(cacheKey(cookie, authorization), answer);
    return answer.kind === 'allow' && answer.user === principal.id ? 'valid' : 'invalid';
  }

  private async answerFor(cookie: string | undefined, authorization: string | undefined, path: string): Promise<ForwardAnswer> {
    const key = cacheKey(cookie, authorization);
    const hit = this.cache.get(key);
    if (hit && hit.until > Date.now()) return hit.answer;
    if (hit) this.cache.delete(key);
    const answer = await this.ask(cookie, authorization, path);
    this.remember(key, answer);
    return answer;
  }

  private remember(key: string, answer: ForwardAnswer): void {
    if (this.config.cache <= 0 || answer.kind === 'error') return;
    this.cache.delete(key);
    if (this.cache.size >= MAX_CACHE_ENTRIES) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(key, { answer, until: Date.now() + this.config.cache });
  }

  /** One request to the auth endpoint. Never throws. */
  ask(cookie: string | undefined, authorization: string | undefined, path: string): Promise<ForwardAnswer> {
    const headers: Record<string, string> = {
      ...this.config.headers,
      'x-original-uri': path,
      'x-gatehouse-service': this.serviceName,
    };
    if (cookie !== undefined) headers.cookie = cookie;
    if (authorization !== undefined) headers.authorization = authorization;
    const lib = this.url.protocol === 'https:' ? https : http;
    return new Promise<ForwardAnswer>((resolve) => {
      let settled = false;
      const done = (a: ForwardAnswer): void => { if (!settled) { settled = true; resolve(a); } };
      const req = lib.request(this.url, { method: 'GET', headers, agent: this.agent, timeout: this.config.timeout }, (res) => {
        // The body is not used; drain it (bounded by the timeout) so the socket can be reused.
        res.resume();
        res.on('error', () => done({ kind: 'error', reason: 'forward_error' }));
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          const user = single(res.headers[this.config.user_header]);
          if (!user || user.length > 256) { done({ kind: 'error', reason: 'forward_no_user' }); return; }
          const roles = (single(res.headers[this.config.roles_header]) ?? '').split(',').map((r) => r.trim()).filter(Boolean);
          done({ kind: 'allow', user, roles });
        } else if (status === 401 || (status >= 300 && status < 400)) {
          // A redirect to a login page means "not logged in".
          const challenge = single(res.headers['www-authenticate']);
          done({ kind: 'deny', status: 401, challenge: challenge && challenge.length <= MAX_HEADER_VALUE && !/[\r\n]/.test(challenge) ? challenge : undefined });
        } else if (status === 403) {
          done({ kind: 'deny', status: 403 });
        } else {
          done({ kind: 'error', reason: 'forward_bad_status' });
        }
      });
      req.on('timeout', () => { done({ kind: 'error', reason: 'forward_timeout' }); req.destroy(); });
      req.on('error', () => done({ kind: 'error', reason: 'forward_unreachable' }));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

function single(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined ? undefined : s.trim();
}

/** The cache key: a hash, so a heap dump of the cache shows no session cookie. */
export function cacheKey(cookie: string | undefined, authorization: string | undefined): string {
  return createHash('sha256').update(cookie ?? '').update('\0').update(authorization ?? '').digest('base64');
}
