/**
 * Check 2: concurrent connections per client address (IPv6 per /64), per
 * service and in total. The check reserves a slot in all three counts (one
 * atomic step of the shared state) and registers its release, which runs when
 * a later check refuses or when the connection ends (`Admission.release`).
 * Over → 429 `too_many_connections` (address), 503 `service_full`, 503 `gateway_full`.
 * A limit of 0 is no limit.
 */
import { addressKey } from '../http/cidr.js';
import { exemptAddresses, orNoLimit } from '../config/limits.js';
import type { SlotRefusal } from '../shared-state/contract.js';
import { Rejection, type AdmissionCheck, type AdmissionContext, type CheckFactory } from './types.js';
import { sharedStateOf } from './state.js';

/** Refusals by address say what else may be wrong: many clients seen as one address. */
export const SHARED_ADDRESS_HINT = ' (clients behind one proxy or NAT share it: list your proxies in trusted_proxies)';

/** How long a client is told to wait when a limit is reached; connections end at human pace. */
const RETRY_AFTER_SECONDS = '5';

export const connectionLimitCheck: CheckFactory = (service, env) => {
  const slots = sharedStateOf(env).connections;
  const config = env.config.limits;
  const limits = {
    perAddress: orNoLimit(config.connections_per_address),
    perService: service.max_connections === 0 ? undefined : service.max_connections,
    total: orNoLimit(config.connections_total),
  };
  // limits.exempt_addresses: no per-address count (a plain number: the limits may cross a process boundary).
  const exempt = exemptAddresses(config);
  const exemptLimits = { ...limits, perAddress: Number.MAX_SAFE_INTEGER };
  const metrics = env.metrics;
  // The open-connection series are taken once per service, not per connection.
  const open = {
    websocket: metrics.connectionsOpen.series({ service: service.name, transport: 'websocket' }),
    fallback: metrics.connectionsOpen.series({ service: service.name, transport: 'fallback' }),
  };
  // One release function per service and transport; the connection's address key is its argument.
  const releaseWebSocket = (key: string): void => {
    slots.release(key, service.name);
    open.websocket.value--;
  };
  const releaseFallback = (key: string): void => {
    slots.release(key, service.name);
    open.fallback.value--;
  };
  const refusals: Record<SlotRefusal, Rejection> = {
    address: new Rejection(429, 'too_many_connections', 'too many connections from this address', { 'Retry-After': RETRY_AFTER_SECONDS },
      `limits.connections_per_address = ${config.connections_per_address}${SHARED_ADDRESS_HINT}`),
    service: new Rejection(503, 'service_full', 'this service is at its connection limit', { 'Retry-After': RETRY_AFTER_SECONDS },
      `services.${service.name}.max_connections = ${String(service.max_connections)}`),
    total: new Rejection(503, 'gateway_full', 'the gateway is at its connection limit', { 'Retry-After': RETRY_AFTER_SECONDS },
      `limits.connections_total = ${config.connections_total}`),
  };
  /** The reservation's outcome, made into the check's answer (one function per service, not per handshake). */
  const settle = (outcome: 'ok' | SlotRefusal, ctx: AdmissionContext, key: string): Rejection | undefined => {
    if (outcome !== 'ok') return refusals[outcome];
    const fallback = ctx.request.transport === 'fallback';
    (fallback ? open.fallback : open.websocket).value++;
    // No closure per connection (it would be kept while the connection
    // lives); the pipeline runs each release action once.
    ctx.onRelease(fallback ? releaseFallback : releaseWebSocket, key);
    return undefined;
  };
  const check: AdmissionCheck = {
    name: 'connection-limit',
    check(ctx) {
      const key = addressKey(ctx.request.remoteAddress);
      const outcome = slots.reserve(key, service.name, exempt.has(ctx.request.remoteAddress) ? exemptLimits : limits);
      // In one process the answer is at once: no closure; a shared store's answer needs one to carry ctx and key.
      return typeof outcome === 'string' ? settle(outcome, ctx, key) : outcome.then((o) => settle(o, ctx, key));
    },
  };
  return check;
};
