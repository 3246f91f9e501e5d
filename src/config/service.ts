/**
 * A service: a route (path, optional host) and where its traffic goes (type),
 * with the admission policy and message limits that apply to it.
 */
import { z } from 'zod';
import { duration, size } from './units.js';
import { policyServiceFields } from './policy.js';
import { authServiceFields } from './auth.js';
import { fallbackServiceFields } from './fallback.js';
import { tcpServiceFields, websocketServiceFields } from './backends.js';
import { compressionServiceFields } from './compression.js';
import { inspectServiceFields } from './inspect.js';
import { pubsubServiceFields } from './pubsub.js';

/** 16 MiB: the largest message any service may allow. */
export const HARD_MAX_MESSAGE = 16 * 1024 * 1024;

const common = {
  /** Exact request path this service answers on, e.g. /echo. */
  path: z.string().regex(/^\/[\x21-\x7e]*$/, 'a path starts with "/" and has no spaces'),
  /** Host names (Host header, no port) this service answers for; any when absent. */
  host: z.union([z.string(), z.array(z.string())]).optional()
    .transform((h) => (h === undefined ? undefined : (Array.isArray(h) ? h : [h]).map((x) => x.toLowerCase()))),
  /** Largest message (after reassembly). Over → close 1009. */
  max_message: size().default(1024 * 1024)
    .refine((n) => n > 0 && n <= HARD_MAX_MESSAGE, `between 1 byte and ${HARD_MAX_MESSAGE} bytes (16 MiB): the frame parser needs a bound`),
  /** Largest single frame; defaults to max_message. */
  max_frame: size().optional().refine((n) => n !== 0, 'must be more than 0: the frame parser needs a bound'),
  /** Most frames in one message, empty ones counted. Over → close 1009. */
  max_fragments: z.number().int().positive().default(1024),
  /** A fragmented message must complete within this time. Over → close 1008. */
  message_timeout: duration().default(30_000),
  /**
   * Close a connection after it has been open this long (1001 `max lifetime`),
   * so clients reconnect and pick up new credentials, config or nodes; 0: no limit.
   */
  max_lifetime: duration().default(0),
  /** Each connection's max_lifetime is shortened by up to this fraction, at random, so a fleet does not reconnect at once. */
  max_lifetime_jitter: z.number().min(0).max(1).default(0.1),
  ...policyServiceFields,
  ...authServiceFields,
  ...fallbackServiceFields,
  ...compressionServiceFields,
};

export const echoServiceSchema = z.strictObject({
  ...common,
  type: z.literal('echo'),
});

export const tcpServiceSchema = z.strictObject({
  ...common,
  type: z.literal('tcp'),
  ...tcpServiceFields,
  ...inspectServiceFields,
});

export const websocketServiceSchema = z.strictObject({
  ...common,
  type: z.literal('websocket'),
  ...websocketServiceFields,
  ...inspectServiceFields,
});

export const pubsubServiceSchema = z.strictObject({
  ...common,
  type: z.literal('pubsub'),
  ...pubsubServiceFields,
});

export const serviceSchema = z.discriminatedUnion('type', [echoServiceSchema, tcpServiceSchema, websocketServiceSchema, pubsubServiceSchema]);
