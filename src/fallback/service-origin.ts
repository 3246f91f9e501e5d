/**
 * The fallback's per-request origin policy from the admission module's allow-list
 * (`origins`, with subdomain patterns), so CORS answers and session requests
 * follow exactly the rules the origin check applies to the open request and the
 * WebSocket upgrade. Compiled once per service config object.
 */
import type { ServiceConfig } from '../config/schema.js';
import { OriginAllowList, parseOrigin } from '../http/origin.js';
import type { OriginPolicy } from './origin.js';

const compiled = new WeakMap<ServiceConfig, OriginAllowList>();

export const serviceOriginPolicy: OriginPolicy = (service, origin, request) => {
  if (origin === null) return service.allow_missing_origin;
  let list = compiled.get(service);
  if (!list) { list = new OriginAllowList(service.origins); compiled.set(service, list); }
  const parsed = parseOrigin(origin);
  return parsed !== undefined && list.permits(parsed, request);
};
