/**
 * The admission pipeline: one ordered list of small checks per service, shared
 * by every transport. `admit` runs them in order and returns an Admission, or
 * the first Rejection (which is audited and counted). Anything a check reserved
 * (connection slots) is released when a later check rejects or the connection ends.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { ServiceConfig } from '../config/schema.js';
import { SharedStateUnavailable } from '../errors.js';
import type { Audit } from '../observe/audit.js';
import {
  Rejection, type Admission, type AdmissionCheck, type AdmissionContext, type AdmissionRequest,
  type CheckEnv, type CheckFactory,
} from './types.js';

let idCounter = 0;
const idPrefix = randomBytes(4).toString('hex');
/** Short, unique, non-secret connection id for logs. */
export function nextConnectionId(): string {
  return connectionIdOf(++idCounter);
}
function connectionIdOf(seq: number): string {
  return `${idPrefix}-${seq.toString(36)}`;
}

export class AdmissionPipeline {
  private readonly perService = new Map<string, AdmissionCheck[]>();

  /** `factories`: the ordered list of checks (`CHECK_FACTORIES`), each built once per service. */
  constructor(
    services: ServiceConfig[],
    factories: readonly CheckFactory[],
    private readonly env: CheckEnv,
    private readonly audit: Audit,
  ) {
    for (const svc of services) this.perService.set(svc.name, buildChecks(factories, svc, env));
  }

  /** Names of the checks a service runs, in order (for docs and tests). */
  checksOf(service: string): string[] {
    return (this.perService.get(service) ?? []).map((c) => c.name);
  }

  /**
   * Run the service's checks in order. Always a promise; `decide` is the same
   * pipeline without the promise when every check answered synchronously.
   */
  async admit(request: AdmissionRequest, service: ServiceConfig): Promise<Admission | Rejection> {
    return this.decide(request, service);
  }

  /**
   * The pipeline itself: checks run in order, the first Rejection stops it
   * (releasing what earlier checks reserved, audited and counted). Checks that
   * answer synchronously are never awaited, so a service without asynchronous
   * checks (authentication) is decided without a promise or a microtask; at the
   * first check that returns a promise the rest continues asynchronously.
   */
  decide(request: AdmissionRequest, service: ServiceConfig): Admission | Rejection | Promise<Admission | Rejection> {
    const run = new AdmissionRun(request, service, this.env, this.audit);
    return run.next(this.perService.get(service.name) ?? NO_CHECKS, 0);
  }
}

const NO_CHECKS: AdmissionCheck[] = [];

function buildChecks(factories: readonly CheckFactory[], service: ServiceConfig, env: CheckEnv): AdmissionCheck[] {
  const checks: AdmissionCheck[] = [];
  for (const factory of factories) {
    const c = factory(service, env);
    if (c) checks.push(c);
  }
  return checks;
}

/** One request's way through the checks: the context the checks fill in, and their undo actions. */
class AdmissionRun implements AdmissionContext {
  origin: string | null = null;
  protocol = '';
  offeredProtocols: string[] = [];
  principal?: AdmissionContext['principal'];
  /** Undo actions as pairs: function, argument. */
  readonly releases: unknown[] = [];
  /** When the decision began (performance.now), for the handshake-duration histogram. */
  private readonly started = performance.now();

  constructor(
    readonly request: AdmissionRequest,
    readonly service: ServiceConfig,
    private readonly env: CheckEnv,
    private readonly audit: Audit,
  ) {}

  onRelease(fn: (arg?: unknown) => void, arg?: unknown): void {
    this.releases.push(fn, arg);
  }

  /** Run checks[i..] in order; synchronous until a check returns a promise. */
  next(checks: AdmissionCheck[], i: number): Admission | Rejection | Promise<Admission | Rejection> {
    for (; i < checks.length; i++) {
      const check = checks[i];
      let outcome: Rejection | undefined;
      try {
        const r = check.check(this);
        if (r instanceof Promise) {
          const rest = i + 1;
          return r.then(
            (o) => (o ? this.reject(o) : this.next(checks, rest)),
            (err: unknown) => this.reject(this.failed(err, check)),
          );
        }
        outcome = r;
      } catch (err) {
        outcome = this.failed(err, check);
      }
      if (outcome) return this.reject(outcome);
    }
    return this.admission();
  }

  private failed(err: unknown, check: AdmissionCheck): Rejection {
    if (err instanceof SharedStateUnavailable) {
      // Fail closed: what only the shared state may decide (a single-use ticket) is not decided without it.
      this.env.log.warn({ err: err.message, check: check.name, service: this.service.name }, 'shared state unavailable: handshake refused');
      return new Rejection(503, 'shared_state_unavailable', 'try again later', { 'Retry-After': '5' });
    }
    this.env.log.error({ err, check: check.name, service: this.service.name }, 'admission check failed');
    return new Rejection(500, 'internal_error', 'internal error');
  }

  private reject(outcome: Rejection): Rejection {
    runReleases(this.releases);
    this.timed();
    const request = this.request;
    this.audit.reject(outcome.reason, {
      service: this.service.name,
      client: request.remoteAddress,
      origin: typeof request.headers.origin === 'string' ? request.headers.origin.slice(0, 256) : undefined,
      transport: request.transport,
      status: outcome.status,
      principal: this.principal?.id,
      detail: outcome.detail,
    });
    return outcome;
  }

  /** The decision took this long, authentication included. */
  private timed(): void {
    this.env.metrics.handshakeSeconds.observe({ service: this.service.name, transport: this.request.transport },
      (performance.now() - this.started) / 1000);
  }

  private admission(): Admission {
    this.timed();
    const request = this.request;
    const releases = this.releases;
    return new AdmittedClient(
      ++idCounter, this.service, request.remoteAddress, request.remotePort,
      this.origin, this.protocol,
      // Most clients offer nothing: one shared empty list instead of an array each.
      this.offeredProtocols.length === 0 ? NO_PROTOCOLS : this.offeredProtocols,
      this.principal, request.tls, request,
      // An exact-size copy, or none: the run's list grew by push (with spare
      // capacity) and an admission lives as long as its connection.
      releases.length === 0 ? null : releases.slice(),
    );
  }
}

const NO_PROTOCOLS: readonly string[] = Object.freeze([]);

/**
 * The Admission a run produces, laid out for an idle connection's memory: a
 * class, so every field is stored in the object itself; the id and the
 * client's address object are made when asked for (audit lines, identity
 * headers), not kept as a string and an object per connection; `release` is a
 * method, finding the undo list on the admission. A copy with other values is
 * made with `withProtocol`, not spread (a spread copy has no getters or methods).
 */
class AdmittedClient implements Admission {
  constructor(
    private readonly seq: number,
    readonly service: ServiceConfig,
    private readonly clientAddress: string,
    private readonly clientPort: number,
    public origin: string | null,
    public protocol: string,
    readonly offeredProtocols: readonly string[],
    readonly principal: Admission['principal'],
    readonly tls: Admission['tls'],
    public request: Admission['request'],
    /** Undo actions (function, argument pairs); shared with copies, so releasing either releases once. */
    private readonly releases: unknown[] | null,
  ) {}

  get id(): string {
    return connectionIdOf(this.seq);
  }

  get client(): Admission['client'] {
    return { address: this.clientAddress, port: this.clientPort };
  }

  release(): void {
    if (this.releases !== null) runReleases(this.releases);
  }

  /** @internal see `withProtocol` */
  withProtocol(protocol: string): AdmittedClient {
    return new AdmittedClient(this.seq, this.service, this.clientAddress, this.clientPort, this.origin, protocol,
      this.offeredProtocols, this.principal, this.tls, this.request, this.releases);
  }
}

/**
 * The same admission with another subprotocol (a fallback session whose
 * service chose one). The copy shares the original's undo actions: releasing
 * either releases once.
 */
export function withProtocol(admission: Admission, protocol: string): Admission {
  if (admission instanceof AdmittedClient) return admission.withProtocol(protocol);
  // Admissions made elsewhere (tests, stand-ins) are plain objects.
  return { ...admission, protocol };
}

/** Runs the undo actions (function, argument pairs) once, latest first, and empties the list (idempotent). */
function runReleases(releases: unknown[]): void {
  if (releases.length === 0) return;
  const pairs = releases.splice(0);
  for (let i = pairs.length - 2; i >= 0; i -= 2) {
    try { (pairs[i] as (arg: unknown) => void)(pairs[i + 1]); } catch { /* a release must never break the others */ }
  }
}
