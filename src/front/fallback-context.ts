/**
 * The front door's context as the fallback endpoints and their answers read
 * it: one record, so the endpoints and the answers they write share a type
 * without importing each other.
 */
import type { Logger } from 'pino';
import type { Admission, AdmissionRequest, Rejection } from '../admission/types.js';
import type { GatehouseConfig, ServiceConfig } from '../config/schema.js';
import type { Audit } from '../observe/audit.js';
import type { Metrics } from '../observe/metrics.js';
import type { Service } from '../services/types.js';

/**
 * What a request is handled with: the front door's current context (swapped
 * as a whole on reload; a session keeps the service and settings it opened with).
 */
export interface FallbackContext {
  config: GatehouseConfig;
  router: { match(host: string | undefined, path: string): ServiceConfig | Rejection };
  pipeline: { admit(request: AdmissionRequest, service: ServiceConfig): Promise<Admission | Rejection> };
  /** The same checks without the door's counters (rate, connection slots): for a live session's changed credentials. */
  credentials: { admit(request: AdmissionRequest, service: ServiceConfig): Promise<Admission | Rejection> };
  services: Map<string, Service>;
  audit: Audit;
  log: Logger;
  metrics: Metrics;
}
