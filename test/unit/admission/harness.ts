/** Builds a real pipeline (config → checks → audit) and AdmissionRequests for unit tests. */
import { Writable } from 'node:stream';
import { AdmissionPipeline } from '../../../src/admission/pipeline.js';
import { CHECK_FACTORIES } from '../../../src/checks.js';
import type { AdmissionRequest } from '../../../src/admission/types.js';
import { parseConfig, servicesOf } from '../../../src/config/load.js';
import type { GatehouseConfig, ServiceConfig } from '../../../src/config/schema.js';
import { Audit } from '../../../src/observe/audit.js';
import { createLogger } from '../../../src/observe/log.js';
import { Metrics } from '../../../src/observe/metrics.js';

export interface Harness {
  config: GatehouseConfig;
  pipeline: AdmissionPipeline;
  metrics: Metrics;
  lines: Array<Record<string, unknown>>;
  service(name: string): ServiceConfig;
}

export function harness(raw: unknown): Harness {
  const config = parseConfig(raw, {});
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger('warn', sink);
  const metrics = new Metrics();
  const audit = new Audit(log, metrics, 1000);
  const services = servicesOf(config);
  const pipeline = new AdmissionPipeline(services, CHECK_FACTORIES, { config, log, metrics }, audit);
  return {
    config, pipeline, metrics, lines,
    service: (name) => {
      const s = services.find((x) => x.name === name);
      if (!s) throw new Error(`no service ${name}`);
      return s;
    },
  };
}

/** An AdmissionRequest as the front door would build it from raw header lines. */
export function request(rawHeaders: string[], address = '192.0.2.10'): AdmissionRequest {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const k = rawHeaders[i].toLowerCase();
    headers[k] = headers[k] === undefined ? rawHeaders[i + 1] : `${headers[k]}, ${rawHeaders[i + 1]}`;
  }
  return {
    transport: 'websocket', method: 'GET', url: '/ws', path: '/ws', query: new URLSearchParams(), httpVersion: '1.1',
    headers, rawHeaders, remoteAddress: address, remotePort: 40000, peerAddress: address, localPort: 8080, secure: false,
  };
}

/** Waits until the log lines (pino writes them asynchronously) satisfy `done`; fails naming `what` after 5 s. */
export async function logged(h: Harness, done: (lines: Harness['lines']) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done(h.lines)) {
    if (Date.now() > deadline) throw new Error(`the log has no ${what} after 5 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
