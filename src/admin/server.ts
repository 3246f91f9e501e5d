/**
 * The admin listener: a plain HTTP server of its own, never one of the client
 * listeners. It serves
 *   GET /healthz   200 while the process runs
 *   GET /readyz    200 while the listeners are open and the gateway is not draining, else 503
 *   GET /metrics   Prometheus text format
 *   GET /          the live dashboard (with /dashboard.js, /dashboard.css)
 *   /api/...       the admin API, with `Authorization: Bearer <admin.token>` (401 otherwise)
 * Requests naming a host that is not an IP address, `localhost` or one of
 * `admin.hosts` get 421 (DNS rebinding).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AdminConfig } from '../config/admin.js';
import { hostWithoutPort } from '../http/host.js';
import type { Audit } from '../observe/audit.js';
import { handleApi, type AdminHooks } from './api.js';
import { isDashboardPath, serveDashboard } from './dashboard-assets.js';
import { methodNotAllowed, sendJson, sendText } from './respond.js';
import { BearerToken } from './token.js';

const IP_LITERAL = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/;

export class AdminServer {
  private readonly server: Server;
  private readonly token: BearerToken;
  private readonly hosts: Set<string>;
  address?: { host: string; port: number };

  constructor(private readonly config: AdminConfig, private readonly hooks: AdminHooks, private readonly audit: Audit) {
    this.token = new BearerToken(config.token);
    this.hosts = new Set(['localhost', ...config.hosts]);
    this.server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => this.onRequest(req, res));
    this.server.keepAliveTimeout = 5_000;
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.host, () => { this.server.off('error', reject); resolve(); });
    });
    const a = this.server.address() as AddressInfo;
    this.address = { host: a.address, port: a.port };
    return this.address;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    try {
      this.route(req, res);
    } catch (err) {
      this.hooks.log.error({ err }, 'admin request failed');
      if (!res.headersSent) sendJson(req, res, 500, { error: 'internal_error' });
      else res.destroy();
    }
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const host = hostWithoutPort(req.headers.host ?? '');
    if (!IP_LITERAL.test(host) && !this.hosts.has(host)) return sendText(req, res, 421, 'unknown host\n');
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (path === '/healthz') return read ? sendText(req, res, 200, 'ok\n') : methodNotAllowed(req, res, 'GET');
    if (path === '/readyz') return read ? this.readyz(req, res) : methodNotAllowed(req, res, 'GET');
    if (path === '/metrics') return read ? this.metrics(req, res) : methodNotAllowed(req, res, 'GET');
    if (path === '/metrics/workers' && this.hooks.metricsByWorker) return read ? this.metricsByWorker(req, res, this.hooks.metricsByWorker) : methodNotAllowed(req, res, 'GET');
    if (this.config.dashboard && isDashboardPath(path)) return read ? serveDashboard(req, res, path) : methodNotAllowed(req, res, 'GET');
    if (path.startsWith('/api/')) return this.api(req, res, path, query);
    sendText(req, res, 404, 'not found\n');
  }

  private readyz(req: IncomingMessage, res: ServerResponse): void {
    const r = this.hooks.readiness();
    if (r.ready) sendText(req, res, 200, 'ready\n');
    else sendText(req, res, 503, `not ready: ${r.reason}\n`);
  }

  private metrics(req: IncomingMessage, res: ServerResponse): void {
    const m = this.hooks.metrics;
    m.render().then(
      (text) => sendText(req, res, 200, text, m.contentType),
      (err: unknown) => { this.hooks.log.error({ err }, 'metrics collection failed'); sendText(req, res, 500, 'metrics collection failed\n'); },
    );
  }

  private metricsByWorker(req: IncomingMessage, res: ServerResponse, render: () => Promise<string>): void {
    render().then(
      (text) => sendText(req, res, 200, text, this.hooks.metrics.contentType),
      (err: unknown) => { this.hooks.log.error({ err }, 'metrics collection failed'); sendText(req, res, 500, 'metrics collection failed\n'); },
    );
  }

  private api(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): void {
    const caller = req.socket.remoteAddress ?? '';
    if (!this.token.accepts(req.headers.authorization)) {
      this.audit.reject('admin_unauthorized', { client: caller, transport: 'admin', status: 401 });
      this.hooks.metrics.adminActions.inc({ action: 'authenticate', outcome: 'refused' });
      return sendJson(req, res, 401, { error: 'unauthorized' }, { 'WWW-Authenticate': 'Bearer realm="gatehouse-admin"' });
    }
    let parts: string[];
    try {
      parts = path.slice('/api/'.length).split('/').map(decodeURIComponent);
    } catch {
      return sendJson(req, res, 400, { error: 'bad_path' });
    }
    handleApi({ req, res, parts, query, caller }, this.hooks);
  }
}
