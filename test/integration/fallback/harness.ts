/**
 * A real HTTP server on port 0 with the real router, admission pipeline,
 * audit trail and fallback endpoints, for the fallback's integration tests.
 * The service behind it is a plain echo (what `type: echo` does).
 */
import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { parseConfig, servicesOf } from '../../../src/config/load.js';
import { Router } from '../../../src/front/router.js';
import { AdmissionPipeline } from '../../../src/admission/pipeline.js';
import { CHECK_FACTORIES, credentialChecks } from '../../../src/checks.js';
import { Audit } from '../../../src/observe/audit.js';
import { Metrics } from '../../../src/observe/metrics.js';
import { createLogger } from '../../../src/observe/log.js';
import { FallbackEndpoints } from '../../../src/front/fallback-endpoints.js';
import type { Service, ServiceSession } from '../../../src/services/types.js';
import type { Channel } from '../../../src/channel.js';
import type { OriginPolicy } from '../../../src/front/fallback-origin.js';

export interface Harness {
  port: number;
  url(path: string): string;
  endpoints: FallbackEndpoints;
  metrics: Metrics;
  /** parsed log lines (JSON) */
  lines: Array<Record<string, unknown>>;
  /** channels the echo service has seen */
  channels: Channel[];
  stop(): Promise<void>;
}

/** Echo: every message straight back, honouring backpressure. */
function echoService(name: string, channels: Channel[]): Service {
  return {
    name,
    async open(): Promise<ServiceSession> {
      return {
        attach(channel: Channel) {
          channels.push(channel);
          channel.attach({
            onMessage(data, isBinary) { if (!channel.send(data, isBinary)) channel.pause(); },
            onDrain() { channel.resume(); },
            onClose() { /* nothing to release */ },
          });
        },
        abort() { /* nothing held */ },
      };
    },
  };
}

export async function startHarness(rawConfig: unknown, opts: { originPolicy?: OriginPolicy } = {}): Promise<Harness> {
  const config = parseConfig(rawConfig, {});
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger('debug', sink);
  const metrics = new Metrics();
  const audit = new Audit(log, metrics, 1000);
  const services = servicesOf(config);
  const router = new Router(services);
  const pipeline = new AdmissionPipeline(services, CHECK_FACTORIES, { config, log, metrics }, audit);
  const credentials = new AdmissionPipeline(services, credentialChecks(), { config, log, metrics }, audit);
  const channels: Channel[] = [];
  const backends = new Map<string, Service>(services.map((s) => [s.name, echoService(s.name, channels)]));
  const endpoints = new FallbackEndpoints({ originPolicy: opts.originPolicy });
  const ctx = { config, router, pipeline, credentials, services: backends, audit, log, metrics };
  const server: Server = createServer((req, res) => {
    if (endpoints.handle(req, res, ctx)) return;
    res.writeHead(426, { Upgrade: 'websocket', 'Content-Type': 'text/plain' });
    res.end('426 upgrade required\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: (path) => `http://127.0.0.1:${port}${path}`,
    endpoints, metrics, lines, channels,
    async stop() {
      endpoints.closeAll();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
