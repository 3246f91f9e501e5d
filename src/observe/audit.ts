/**
 * The audit trail: one line per admission decision that refuses, and per
 * connection a gateway ends for bad input. Each carries a stable reason code,
 * the service, the client address and the origin — never credentials.
 * Lines are rate-limited per reason so a flood cannot drown the log; every
 * event is still counted in the metrics.
 */
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';
import { RateLimitedLog } from './log.js';

export interface AuditFields {
  service?: string;
  client?: string;
  origin?: string | null;
  transport?: string;
  status?: number;
  code?: number;
  principal?: string;
  connection?: string;
  detail?: string;
  /** Protocol command (STOMP frame, MQTT packet) an inspector refused. */
  command?: string;
  /** Destination or topic it concerned. */
  destination?: string;
  /** Whose traffic: `to_backend` the client's, `to_client` the backend's. */
  direction?: string;
}

/** Violations that are a credential's end rather than bad input. */
const CREDENTIAL_ENDS = new Set(['credential_expired', 'credential_revoked']);

export class Audit {
  private readonly limited: RateLimitedLog;
  constructor(log: Logger, private readonly metrics: Metrics, perSecond: number) {
    this.limited = new RateLimitedLog(log.child({ audit: true }), perSecond);
  }

  /** A handshake or fallback request refused with an HTTP status. */
  reject(reason: string, fields: AuditFields): void {
    this.metrics.rejections.inc({ reason });
    this.limited.warn(`reject.${reason}`, { reason, ...fields }, `refused: ${reason}`);
  }

  /** An open connection's reading paused because the client is over one of its rates (`limit`). */
  throttle(limit: string, fields: AuditFields): void {
    this.metrics.inc('gatehouse_throttled_total', { limit });
    this.limited.warn(`throttle.${limit}`, { reason: 'rate_limited', limit, ...fields }, `reading paused: over ${limit}`);
  }

  /** An open connection ended by the gateway because of bad input or a policy. */
  violation(reason: string, fields: AuditFields): void {
    this.metrics.violations.inc({ reason });
    if (CREDENTIAL_ENDS.has(reason)) this.metrics.credentialEnds.inc({ service: fields.service ?? '', reason });
    this.limited.warn(`violation.${reason}`, { reason, ...fields }, `connection closed: ${reason}`);
  }

  /** A request inside an open connection refused in its protocol; the connection stays (counted by the caller: gatehouse_inspection_refusals_total). */
  refusal(reason: string, fields: AuditFields): void {
    this.limited.warn(`refusal.${reason}`, { reason, ...fields }, `request refused: ${reason}`);
  }
}
