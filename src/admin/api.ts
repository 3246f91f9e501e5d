/**
 * The admin API (bearer token checked by the caller): list open connections,
 * close one or all of a principal's (1008), reload the configuration, start a
 * drain. Every action is audited: one `admin.<action>` line naming what was
 * done, and the counter `gatehouse_admin_actions_total`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Channel } from '../channel.js';
import type { Metrics } from '../observe/metrics.js';
import type { TrafficReader } from '../observe/traffic.js';
import { busiest, connectionRow, findById, matching, type ConnectionRow } from './connections.js';
import { methodNotAllowed, sendJson } from './respond.js';
import { publish, type PublishTo } from './publish.js';

export type ReloadResult =
  | { ok: true; services: string[] }
  | { ok: false; status: number; error: string; issues: string[] };

/** What the admin listener reads and acts on; the composition root supplies it. */
export interface AdminHooks {
  metrics: Metrics;
  /** Audit lines of admin actions (info level, `"audit": true`). */
  log: Logger;
  channels(): Iterable<Channel>;
  traffic: TrafficReader;
  /** Listeners open and not draining; else why not. */
  readiness(): { ready: true } | { ready: false; reason: string };
  reload(): Promise<ReloadResult>;
  drain(): void;
  /** With workers: every family with a `worker` label, one series per worker (`/metrics` has their sums). */
  metricsByWorker?(): Promise<string>;
  /** A message for a `pubsub` service's channel, to every subscriber in the cluster. */
  publish?: PublishTo;
}

/** Close code and reason of a connection an admin closes. */
export const ADMIN_CLOSE_CODE = 1008;
export const ADMIN_CLOSE_REASON = 'closed by administrator';

export interface ApiCall {
  req: IncomingMessage;
  res: ServerResponse;
  /** Path below /api/, already split on '/' and URI-decoded. */
  parts: string[];
  query: URLSearchParams;
  /** Address of the admin caller, for the audit line. */
  caller: string;
}

export function handleApi(call: ApiCall, hooks: AdminHooks): void {
  const { req, res, parts } = call;
  const m = req.method ?? 'GET';
  const route = parts.join('/');
  if (route === 'connections') return m === 'GET' || m === 'HEAD' ? listConnections(call, hooks) : methodNotAllowed(req, res, 'GET');
  if (parts[0] === 'connections' && parts.length === 2) return m === 'DELETE' ? closeOne(call, hooks, parts[1]) : methodNotAllowed(req, res, 'DELETE');
  if (parts[0] === 'principals' && parts.length === 3 && parts[2] === 'connections') {
    return m === 'DELETE' ? closePrincipal(call, hooks, parts[1]) : methodNotAllowed(req, res, 'DELETE');
  }
  if (route === 'top') return m === 'GET' || m === 'HEAD' ? sendJson(req, res, 200, busiest(hooks.channels(), hooks.traffic)) : methodNotAllowed(req, res, 'GET');
  if (route === 'reload') return m === 'POST' ? reload(call, hooks) : methodNotAllowed(req, res, 'POST');
  if (route === 'drain') return m === 'POST' ? drain(call, hooks) : methodNotAllowed(req, res, 'POST');
  if (route === 'publish') return m === 'POST' ? publish(req, res, hooks.publish, (outcome, fields) => audited(hooks, call, 'publish', outcome, fields)) : methodNotAllowed(req, res, 'POST');
  sendJson(req, res, 404, { error: 'not_found' });
}

function listConnections({ req, res, query }: ApiCall, hooks: AdminHooks): void {
  const filter = { service: query.get('service') ?? undefined, principal: query.get('principal') ?? undefined };
  const rows: ConnectionRow[] = [];
  const now = Date.now();
  for (const ch of matching(hooks.channels(), filter)) {
    const row = connectionRow(ch, hooks.traffic, now);
    if (row) rows.push(row);
  }
  sendJson(req, res, 200, { connections: rows });
}

function closeOne(call: ApiCall, hooks: AdminHooks, id: string): void {
  const ch = findById(hooks.channels(), id);
  if (ch === undefined) {
    audited(hooks, call, 'close_connection', 'not_found', { connection: id.slice(0, 64) });
    return sendJson(call.req, call.res, 404, { error: 'no_such_connection' });
  }
  const a = ch.admission;
  audited(hooks, call, 'close_connection', 'ok', { connection: id, service: a?.service.name, principal: a?.principal?.id });
  ch.close(ADMIN_CLOSE_CODE, ADMIN_CLOSE_REASON);
  sendJson(call.req, call.res, 200, { closed: [id] });
}

function closePrincipal(call: ApiCall, hooks: AdminHooks, principal: string): void {
  const closing = [...matching(hooks.channels(), { principal })];
  const ids = closing.map((ch) => ch.admission?.id ?? '');
  audited(hooks, call, 'close_principal', 'ok', { principal, connections: ids.length });
  for (const ch of closing) ch.close(ADMIN_CLOSE_CODE, ADMIN_CLOSE_REASON);
  sendJson(call.req, call.res, 200, { closed: ids });
}

function reload(call: ApiCall, hooks: AdminHooks): void {
  void hooks.reload().then((r) => {
    if (r.ok) {
      audited(hooks, call, 'reload', 'ok', { services: r.services });
      return sendJson(call.req, call.res, 200, { reloaded: true, services: r.services });
    }
    audited(hooks, call, 'reload', 'refused', { error: r.error });
    sendJson(call.req, call.res, r.status, { reloaded: false, error: r.error, issues: r.issues });
  });
}

function drain(call: ApiCall, hooks: AdminHooks): void {
  audited(hooks, call, 'drain', 'ok', {});
  sendJson(call.req, call.res, 202, { draining: true });
  hooks.drain();
}

function audited(hooks: AdminHooks, call: ApiCall, action: string, outcome: string, fields: Record<string, unknown>): void {
  hooks.metrics.adminActions.inc({ action, outcome: outcome === 'ok' ? 'ok' : 'refused' });
  hooks.log.info({ audit: true, event: `admin.${action}`, outcome, client: call.caller, ...fields }, `admin: ${action} ${outcome}`);
}
