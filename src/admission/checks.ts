/**
 * The ordered list of admission checks. Each entry is a factory that builds the
 * check for one service from its config (returning undefined when the service
 * does not need it), so policy is compiled once, not per request.
 *
 * Order matters and is the security model: cheap refusals first, nothing that
 * costs a backend or an outbound call before origin and rate limits have passed.
 */
import type { Logger } from 'pino';
import type { GatehouseConfig, ServiceConfig } from '../config/schema.js';
import type { Metrics } from '../observe/metrics.js';
import type { AdmissionCheck } from './types.js';
import type { AdmissionState } from './state.js';
import { handshakeRateCheck } from './handshake-rate.js';
import { connectionLimitCheck } from './connection-limit.js';
import { originCheck } from './origin.js';
import { offeredProtocolsCheck } from './offered-protocols.js';
import { subprotocolCheck } from './subprotocol.js';
import { authenticateCheck } from '../auth/authenticate.js';
import { authorizeCheck } from '../auth/authorize.js';

/** What checks may share across services (limiters, stores). */
export interface CheckEnv {
  config: GatehouseConfig;
  log: Logger;
  metrics: Metrics;
  /**
   * Limiter state shared by all services (handshake buckets, connection counts).
   * Pass the same object to the pipeline built on a config reload so open
   * connections stay counted; when absent, one is kept per CheckEnv object.
   */
  state?: AdmissionState;
}

export type CheckFactory = (service: ServiceConfig, env: CheckEnv) => AdmissionCheck | undefined;

export const CHECK_FACTORIES: CheckFactory[] = [
  // 1. request sanity and rate limits
  handshakeRateCheck,
  connectionLimitCheck,
  // 2. origin (RFC 6454)
  originCheck,
  // offered subprotocols parsed (400 on junk) before authentication may remove credential carriers
  offeredProtocolsCheck,
  // 3. authentication
  authenticateCheck,
  // 4. authorization
  authorizeCheck,
  // 5. subprotocol negotiation
  subprotocolCheck,
];

export function buildChecks(service: ServiceConfig, env: CheckEnv): AdmissionCheck[] {
  const checks: AdmissionCheck[] = [];
  for (const factory of CHECK_FACTORIES) {
    const c = factory(service, env);
    if (c) checks.push(c);
  }
  return checks;
}
