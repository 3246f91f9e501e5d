/**
 * The admission pipeline: one ordered list of small checks per service, shared
 * by every transport. `admit` runs them in order and returns an Admission, or
 * the first Rejection (which is audited and counted). Anything a check reserved
 * (connection slots) is released when a later check rejects or the connection ends.
 */
import { randomBytes } from 'node:crypto';
import type { ServiceConfig } from '../config/schema.js';
import type { Audit } from '../observe/audit.js';
import {
  Rejection, type Admission, type AdmissionCheck, type AdmissionContext, type AdmissionRequest,
} from './types.js';
import { buildChecks, type CheckEnv } from './checks.js';

let idCounter = 0;
const idPrefix = randomBytes(4).toString('hex');
/** Short, unique, non-secret connection id for logs. */
export function nextConnectionId(): string {
  return `${idPrefix}-${(++idCounter).toString(36)}`;
}

export class AdmissionPipeline {
  private readonly perService = new Map<string, AdmissionCheck[]>();

  constructor(services: ServiceConfig[], private readonly env: CheckEnv, private readonly audit: Audit) {
    for (const svc of services) this.perService.set(svc.name, buildChecks(svc, env));
  }

  /** Names of the checks a service runs, in order (for docs and tests). */
  checksOf(service: string): string[] {
    return (this.perService.get(service) ?? []).map((c) => c.name);
  }

  async admit(request: AdmissionRequest, service: ServiceConfig): Promise<Admission | Rejection> {
    const releases: Array<() => void> = [];
    const release = (): void => runReleases(releases);
    const ctx: AdmissionContext = {
      request,
      service,
      origin: null,
      protocol: '',
      offeredProtocols: [],
      onRelease: (fn) => { releases.push(fn); },
    };
    const checks = this.perService.get(service.name) ?? [];
    for (const check of checks) {
      let outcome: Rejection | undefined;
      try {
        const r = check.check(ctx);
        outcome = r instanceof Promise ? await r : r;
      } catch (err) {
        this.env.log.error({ err, check: check.name, service: service.name }, 'admission check failed');
        outcome = new Rejection(500, 'internal_error', 'internal error');
      }
      if (outcome) {
        release();
        this.audit.reject(outcome.reason, {
          service: service.name,
          client: request.remoteAddress,
          origin: typeof request.headers.origin === 'string' ? request.headers.origin.slice(0, 256) : undefined,
          transport: request.transport,
          status: outcome.status,
          principal: ctx.principal?.id,
        });
        return outcome;
      }
    }
    const admission: ReleasableAdmission = {
      id: nextConnectionId(),
      service,
      client: { address: request.remoteAddress, port: request.remotePort },
      origin: ctx.origin,
      protocol: ctx.protocol,
      offeredProtocols: ctx.offeredProtocols,
      principal: ctx.principal,
      tls: request.tls,
      request,
      release: releaseAdmission,
      [kReleases]: releases,
    };
    return admission;
  }
}

const kReleases = Symbol('gatehouse.admission.releases');
type ReleasableAdmission = Admission & { [kReleases]: Array<() => void> };

/**
 * `Admission.release`: one function for every admission (no closure per
 * connection), finding the undo actions on the admission itself. A copy made
 * with spread shares the same array, so releasing either releases once.
 */
function releaseAdmission(this: Admission): void {
  runReleases((this as ReleasableAdmission)[kReleases]);
}

/** Runs the undo actions once, latest first, and empties the list (idempotent). */
function runReleases(releases: Array<() => void>): void {
  if (releases.length === 0) return;
  const fns = releases.splice(0);
  for (let i = fns.length - 1; i >= 0; i--) {
    try { fns[i](); } catch { /* a release must never break the others */ }
  }
}
