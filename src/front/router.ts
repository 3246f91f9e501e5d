/**
 * Routes a request to a service by exact path and, where a service names
 * hosts, by Host. No decoding, no normalisation tricks: `/a/../b`, `/A`,
 * `%2F` forms simply do not match, so a route can never be reached by a path
 * that merely resolves to it.
 */
import type { ServiceConfig } from '../config/schema.js';
import { Rejection } from '../admission/types.js';
import { hostWithoutPort } from '../http/host.js';

export class Router {
  private readonly byPath = new Map<string, { hosts: Map<string, ServiceConfig>; any?: ServiceConfig }>();

  constructor(services: ServiceConfig[]) {
    for (const svc of services) {
      let entry = this.byPath.get(svc.path);
      if (!entry) { entry = { hosts: new Map() }; this.byPath.set(svc.path, entry); }
      if (svc.host) for (const h of svc.host) entry.hosts.set(h, svc);
      else entry.any = svc;
    }
  }

  /** `host` is the Host header value (may carry a port); `path` excludes the query. */
  match(host: string | undefined, path: string): ServiceConfig | Rejection {
    const entry = this.byPath.get(path);
    if (!entry) return new Rejection(404, 'no_route', 'no service at this path');
    if (entry.hosts.size > 0 && host !== undefined) {
      const svc = entry.hosts.get(hostWithoutPort(host));
      if (svc) return svc;
    }
    if (entry.any) return entry.any;
    // The path exists, but not for this host: the request was misdirected.
    return new Rejection(421, 'misdirected_host', 'this host is not served here');
  }

  /** Every routable path, for the index page. */
  services(): ServiceConfig[] {
    const out: ServiceConfig[] = [];
    for (const e of this.byPath.values()) {
      if (e.any) out.push(e.any);
      for (const s of e.hosts.values()) if (!out.includes(s)) out.push(s);
    }
    return out;
  }
}
