/**
 * Starts a real Gateway in-process on an ephemeral loopback port, with its log
 * captured so tests can assert audit lines (reason codes, no secrets).
 */
import { Writable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { Gateway, type GatewayOptions } from '../../src/gateway.js';
import { createLogger } from '../../src/observe/log.js';

export interface LogLine { level: string; msg: string; reason?: string; event?: string; [k: string]: unknown }

export interface TestGateway {
  gateway: Gateway;
  port: number;
  host: string;
  /** ws://127.0.0.1:PORT + path */
  url(path: string): string;
  /** http://127.0.0.1:PORT + path */
  httpUrl(path: string): string;
  logs: LogLine[];
  /** Reason codes of audit lines so far, in order. */
  auditReasons(): string[];
  /** Raw text of everything logged, to assert that secrets never appear. */
  logText(): string;
  stop(timeoutMs?: number): Promise<void>;
}

export async function startGateway(config: string | Record<string, unknown>, env: NodeJS.ProcessEnv = process.env, options: Omit<GatewayOptions, 'logger'> = {}): Promise<TestGateway> {
  const raw = (typeof config === 'string' ? parseYaml(config) : structuredClone(config)) as Record<string, unknown>;
  raw.listen ??= [{ host: '127.0.0.1', port: 0 }];
  raw.log = { level: 'debug', bad_input_per_second: 10_000, ...(raw.log as object | undefined) };
  const parsed = parseConfig(raw, env);
  const logs: LogLine[] = [];
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const s = chunk.toString('utf8');
      text += s;
      for (const line of s.split('\n')) if (line) { try { logs.push(JSON.parse(line) as LogLine); } catch { /* partial */ } }
      cb();
    },
  });
  const logger = createLogger(parsed.log.level, sink);
  const gateway = await Gateway.start(parsed, { ...options, logger });
  const { host, port } = gateway.addresses[0];
  return {
    gateway, port, host,
    url: (path) => `ws://127.0.0.1:${port}${path}`,
    httpUrl: (path) => `http://127.0.0.1:${port}${path}`,
    logs,
    auditReasons: () => logs.filter((l) => l.audit && typeof l.reason === 'string').map((l) => l.reason as string),
    logText: () => text,
    stop: (timeoutMs = 2000) => gateway.stop(timeoutMs),
  };
}
