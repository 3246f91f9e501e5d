/**
 * A real, small web application with cookie sessions, for the `forward`
 * authenticator's tests: a login form that sets an HttpOnly session cookie,
 * and an auth endpoint (like one nginx auth_request would call) that answers
 * 200 with X-Auth-User / X-Auth-Roles for a valid session, 401 otherwise.
 *
 *   GET  /            the app's page (its origin is the "own origin" in CSWSH tests)
 *   GET  /login       the login form
 *   POST /login       user=…&password=… → 303 + Set-Cookie: session=…
 *   POST /logout      ends the session
 *   GET  /auth        session check for the gateway
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LoginAppUser {
  password: string;
  roles?: string[];
}

export interface LoginApp {
  /** http://127.0.0.1:PORT */
  origin: string;
  port: number;
  /** The URL the gateway's `forward` method calls. */
  authUrl: string;
  /** Logs in through the real form; returns the `session=…` cookie pair. */
  login(user: string, password: string): Promise<string>;
  /** Ends every session of `user` (as an admin disabling the account would). */
  revoke(user: string): void;
  /** Requests the auth endpoint has answered. */
  readonly authCalls: number;
  /** Make the auth endpoint answer after `ms` (to test timeouts), or with a fixed status. */
  setAuthBehaviour(b: { delayMs?: number; status?: number }): void;
  stop(): Promise<void>;
}

const COOKIE = 'session';

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a), y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function sessionFrom(cookieHeader: string | undefined): string | undefined {
  for (const part of (cookieHeader ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === COOKIE) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function readBody(req: http.IncomingMessage, limit = 4096): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => { body += c; if (body.length > limit) { reject(new Error('body too large')); req.destroy(); } });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

export async function startLoginApp(users: Record<string, LoginAppUser>): Promise<LoginApp> {
  const sessions = new Map<string, string>();
  let authCalls = 0;
  let behaviour: { delayMs?: number; status?: number } = {};

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/') {
      const user = sessions.get(sessionFrom(req.headers.cookie) ?? '');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>App</title><p>${user ? `Hello ${user}` : '<a href="/login">Log in</a>'}</p>`);
      return;
    }
    if (req.method === 'GET' && path === '/login') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><form method="post" action="/login"><input name="user"><input name="password" type="password"><button>Log in</button></form>');
      return;
    }
    if (req.method === 'POST' && path === '/login') {
      readBody(req).then((body) => {
        const form = new URLSearchParams(body);
        const name = form.get('user') ?? '';
        const u = Object.prototype.hasOwnProperty.call(users, name) ? users[name] : undefined;
        if (!u || !sameSecret(form.get('password') ?? '', u.password)) {
          res.writeHead(401, { 'content-type': 'text/plain' });
          res.end('wrong user name or password');
          return;
        }
        const sid = randomBytes(24).toString('base64url');
        sessions.set(sid, name);
        res.writeHead(303, { location: '/', 'set-cookie': `${COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax` });
        res.end();
      }, () => { res.writeHead(400); res.end(); });
      return;
    }
    if (req.method === 'POST' && path === '/logout') {
      sessions.delete(sessionFrom(req.headers.cookie) ?? '');
      res.writeHead(303, { location: '/', 'set-cookie': `${COOKIE}=; Path=/; Max-Age=0` });
      res.end();
      return;
    }
    if (req.method === 'GET' && path === '/auth') {
      authCalls++;
      const answer = (): void => {
        if (behaviour.status !== undefined) { res.writeHead(behaviour.status); res.end(); return; }
        const user = sessions.get(sessionFrom(req.headers.cookie) ?? '');
        if (!user) {
          res.writeHead(401, { 'www-authenticate': 'Cookie realm="app"' });
          res.end();
          return;
        }
        res.writeHead(200, { 'x-auth-user': user, 'x-auth-roles': (users[user].roles ?? []).join(',') });
        res.end();
      };
      if (behaviour.delayMs) setTimeout(answer, behaviour.delayMs); else answer();
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `http://127.0.0.1:${port}`;

  return {
    origin,
    port,
    authUrl: `${origin}/auth`,
    async login(user, password) {
      const res = await fetch(`${origin}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ user, password }).toString(),
        redirect: 'manual',
      });
      const setCookie = res.headers.get('set-cookie');
      await res.arrayBuffer();
      if (res.status !== 303 || !setCookie) throw new Error(`login failed with ${res.status}`);
      return setCookie.split(';')[0];
    },
    revoke(user) {
      for (const [sid, u] of sessions) if (u === user) sessions.delete(sid);
    },
    get authCalls() { return authCalls; },
    setAuthBehaviour(b) { behaviour = b; },
    stop() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
