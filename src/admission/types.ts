/**
 * Transport-neutral types of the admission pipeline. The WebSocket upgrade and
 * the fallback "open" request both describe themselves as an AdmissionRequest
 * and get back either an Admission or a Rejection. The request and the
 * Admission are ground-floor records (`src/admitted.ts`), re-exported here for
 * the checks; the check contract is here.
 */
import type { Logger } from 'pino';
import type { GatehouseConfig, ServiceConfig } from '../config/schema.js';
import type { Metrics } from '../observe/metrics.js';
import type { AdmissionRequest, Principal } from '../admitted.js';
import type { SharedState } from '../shared-state/contract.js';

export type { Admission, AdmissionRequest, Principal, TlsInfo } from '../admitted.js';

/** A refusal: HTTP status, a stable reason code, headers to add. */
export class Rejection {
  readonly status: number;
  readonly reason: string;
  readonly headers: Record<string, string>;
  readonly message: string;
  /** For the audit line only (never sent): e.g. the configuration key that decided the refusal. */
  readonly detail?: string;
  constructor(status: number, reason: string, message?: string, headers: Record<string, string> = {}, detail?: string) {
    this.status = status;
    this.reason = reason;
    this.message = message ?? reason;
    this.headers = headers;
    if (detail !== undefined) this.detail = detail;
  }
}

/** The state an admission check reads and fills in. */
export interface AdmissionContext {
  readonly request: AdmissionRequest;
  readonly service: ServiceConfig;
  origin: string | null;
  protocol: string;
  offeredProtocols: string[];
  principal?: Principal;
  /**
   * Register an undo action run when the connection ends or a later check
   * rejects. With `arg`, `fn(arg)` is run: one function per check and a value
   * per connection cost an admitted connection less than a closure each.
   */
  onRelease<T>(fn: (arg: T) => void, arg: T): void;
  onRelease(fn: () => void): void;
}

/** One small, independent check. Returns a Rejection to stop the pipeline. */
export interface AdmissionCheck {
  readonly name: string;
  check(ctx: AdmissionContext): Rejection | undefined | Promise<Rejection | undefined>;
}

/** What checks may share across services (limiters, stores). */
export interface CheckEnv {
  config: GatehouseConfig;
  log: Logger;
  metrics: Metrics;
  /**
   * State that guards security (handshake buckets, connection counts, failure
   * counts, used and issued tickets), shared by all services. Pass the same
   * object to the pipeline built on a config reload so open connections stay
   * counted and blocked addresses blocked; the cluster passes one shared by
   * its processes. When absent, the admission checks keep one per CheckEnv
   * object and the auth checks of one configuration make their own.
   */
  shared?: SharedState;
}

/**
 * Builds one check for one service from its config, or undefined when the
 * service does not need it, so policy is compiled once, not per request.
 */
export type CheckFactory = (service: ServiceConfig, env: CheckEnv) => AdmissionCheck | undefined;
