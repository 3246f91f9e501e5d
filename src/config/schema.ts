/**
 * The configuration schema: one typed, validated, documented tree. Every key
 * has a safe default (see docs/configuration.md); errors name the path of the
 * bad key. Sections live in their own files; this file composes them.
 */
import { z } from 'zod';
import { listenerSchema } from './listener.js';
import { serviceSchema } from './service.js';
import { limit, limitsSchema } from './limits.js';
import { duration, size } from './units.js';
import { policyRootFields } from './policy.js';
import { authRootFields } from './auth.js';
import { fallbackRootFields } from './fallback.js';
import { adminRootFields } from './admin.js';
import { clusterRootFields } from './cluster.js';
import { compressionRootFields } from './compression.js';

export const websocketSchema = z.strictObject({
  /** Send a ping after this long without traffic from the peer; 0 disables. */
  ping_interval: duration().default(25_000),
  /** Close (drop) when a ping is not answered within this time. */
  pong_timeout: duration().default(20_000),
  /** Close 1001 after this long without any frame from the peer (pongs count); 0 disables. */
  idle_timeout: duration().default(120_000),
  /** After sending a Close, drop TCP if the peer has not answered within this time. */
  close_timeout: duration().default(5_000),
  /** `send` reports "full" once this many bytes wait for the socket. */
  high_water_mark: size().default(64 * 1024),
  ...compressionRootFields,
});

export const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Most log lines per second for one kind of bad-input event; excess is counted, then summarised. */
  bad_input_per_second: limit('Most audit lines per second for one kind of bad input (counters are never limited).').default(20),
});

export const shutdownSchema = z.strictObject({
  /** How long SIGTERM waits for open connections to finish their close handshake. */
  drain_timeout: duration().default(30_000),
});

export const configSchema = z.strictObject({
  listen: z.array(listenerSchema).min(1).default([{ host: '127.0.0.1', port: 8080 } as never]),
  services: z.record(z.string().regex(/^[A-Za-z0-9_.-]+$/, 'service names use letters, digits, _ . -'), serviceSchema).default({}),
  limits: limitsSchema.prefault({}),
  websocket: websocketSchema.prefault({}),
  log: logSchema.prefault({}),
  shutdown: shutdownSchema.prefault({}),
  /** Serve a small page at `/` listing the services (and the demo). */
  index_page: z.boolean().default(true),
  ...policyRootFields,
  ...authRootFields,
  ...fallbackRootFields,
  ...adminRootFields,
  ...clusterRootFields,
});

export type GatehouseConfig = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type ServiceConfig = z.output<typeof serviceSchema> & { name: string };
export type WebSocketSettings = z.output<typeof websocketSchema>;
export type { ListenerConfig } from './listener.js';
export type { LimitsConfig } from './limits.js';
export type { AdminConfig } from './admin.js';
