/**
 * Runs the real admission pipeline (with the auth checks registered in
 * CHECK_FACTORIES) on hand-built requests, capturing the audit log lines so
 * tests can check reason codes and that no secret reached the log.
 */
import { Writable } from 'node:stream';
import { AdmissionPipeline } from '../../../src/admission/pipeline.js';
import { CHECK_FACTORIES } from '../../../src/checks.js';
import type { Admission, AdmissionRequest } from '../../../src/admission/types.js';
import { Rejection } from '../../../src/admission/types.js';
import { parseConfig, servicesOf } from '../../../src/config/load.js';
import { limitsSchema } from '../../../src/config/limits.js';
import { echoServiceSchema } from '../../../src/config/service.js';
import type { GatehouseConfig, ServiceConfig } from '../../../src/config/schema.js';
import { Audit } from '../../../src/observe/audit.js';
import { createLogger } from '../../../src/observe/log.js';
import { Metrics } from '../../../src/observe/metrics.js';

export interface Harness {
  config: GatehouseConfig;
  pipeline: AdmissionPipeline;
  audit: Audit;
  metrics: Metrics;
  /** Every log line written so far, as text. */
  logText(): string;
  logLines(): Array<Record<string, unknown>>;
  service(name: string): ServiceConfig;
  admit(service: string, req?: Omit<Partial<AdmissionRequest>, 'headers'> & { headers?: Record<string, string | string[]> }): Promise<Admission | Rejection>;
}

/** Origins every test service allows (when the schema has the origin policy keys). */
export const TEST_ORIGINS = ['http://gw.test', 'https://other.gw.test'];

/**
 * These tests are about authentication: where the admission issue's origin
 * policy is in the schema, services admit the test origins and clients
 * without Origin (non-browser), unless a test says otherwise.
 */
function withOriginPolicy(raw: Record<string, unknown>): Record<string, unknown> {
  const shape = echoServiceSchema.shape as Record<string, unknown>;
  // Many handshakes come from one test address in a burst: the handshake rate limit is not under test here.
  if ('handshake_burst' in (limitsSchema.shape as Record<string, unknown>)) {
    raw = { ...raw, limits: { handshake_rate: 100_000, handshake_burst: 100_000, ...(raw.limits as object | undefined) } };
  }
  if (!('origins' in shape) || !('allow_missing_origin' in shape)) return raw;
  const services: Record<string, unknown> = {};
  for (const [name, svc] of Object.entries((raw.services ?? {}) as Record<string, Record<string, unknown>>)) {
    services[name] = { origins: TEST_ORIGINS, allow_missing_origin: true, ...svc };
  }
  return { ...raw, services };
}

export function makeHarness(rawConfig: Record<string, unknown>): Harness {
  const config = parseConfig(withOriginPolicy(rawConfig), {});
  const lines: string[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } });
  const log = createLogger('debug', sink);
  const metrics = new Metrics();
  const audit = new Audit(log, metrics, 1000);
  const services = servicesOf(config);
  const pipeline = new AdmissionPipeline(services, CHECK_FACTORIES, { config, log, metrics }, audit);
  return {
    config, pipeline, audit, metrics,
    logText: () => lines.join(''),
    logLines: () => lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
    service: (name) => services.find((s) => s.name === name)!,
    admit(name, req = {}) {
      const svc = services.find((s) => s.name === name)!;
      return pipeline.admit(request({ ...req, path: svc.path }), svc);
    },
  };
}

/** A request as the front door would describe it; rawHeaders derived from headers. */
export function request(over: Omit<Partial<AdmissionRequest>, 'headers'> & { headers?: Record<string, string | string[]> } = {}): AdmissionRequest {
  const headers: Record<string, string | string[]> = { host: 'gw.test', ...(over.headers ?? {}) };
  const rawHeaders: string[] = over.rawHeaders ?? [];
  if (!over.rawHeaders) {
    for (const [k, v] of Object.entries(headers)) for (const x of Array.isArray(v) ? v : [v]) rawHeaders.push(k, x);
  }
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) flat[k] = Array.isArray(v) ? (k === 'cookie' ? v.join('; ') : v[0]) : v;
  const url = over.url ?? over.path ?? '/';
  const q = url.indexOf('?');
  return {
    transport: 'websocket',
    method: over.method ?? 'GET',
    url,
    path: over.path ?? (q < 0 ? url : url.slice(0, q)),
    query: over.query ?? new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
    httpVersion: '1.1',
    headers: flat,
    rawHeaders,
    remoteAddress: over.remoteAddress ?? '127.0.0.1',
    remotePort: 40000,
    peerAddress: over.remoteAddress ?? '127.0.0.1',
    localPort: 8080,
    secure: false,
  };
}

export function isRejection(x: unknown): x is Rejection {
  return x instanceof Rejection;
}
