/**
 * Config keys of the fallback issue (6): fields spread into every service, and root sections.
 *
 * Per service: `fallback: false` turns the HTTP fallback off for that service
 * (WebSocket only). Root: `fallback:` holds the timing and size limits shared by
 * every fallback session, with the defaults of the security catalogue (§3,
 * "Fallback sessions", "Fallback POST body", "Whole request").
 */
import { z } from 'zod';
import { duration, size } from './units.js';

export const fallbackSettingsSchema = z.strictObject({
  /** Reap a session after this long without any request from its client (its backend link is closed). */
  session_timeout: duration().default(30_000),
  /** A long-poll is answered (empty) after this long without messages. Must be below session_timeout. */
  poll_timeout: duration().default(20_000),
  /** A heartbeat frame is written on an idle stream this often, so intermediaries and the client see life. */
  heartbeat: duration().default(10_000),
  /** A streaming response is ended (and the client re-requests) after this many bytes. */
  response_limit: size().default(128 * 1024),
  /** Largest request body (upstream batch). Over → 413. */
  max_body: size().default(1024 * 1024),
  /** Time to receive a whole request body. Over → 408. */
  request_timeout: duration().default(30_000),
  /** Most bytes a session holds for its client (sent but not acknowledged, or not yet sent). Over → close 1008. */
  max_buffer: size().default(1024 * 1024),
  /** `send` reports "full" once this many bytes wait for the client's acknowledgement. */
  high_water_mark: size().default(64 * 1024),
  /** After the gateway closes a session, wait this long for the client to acknowledge the close. */
  close_timeout: duration().default(5_000),
  /** Serve the client library at /.gatehouse/client.js (and its ESM form at /.gatehouse/client.mjs). */
  serve_client: z.boolean().default(true),
  /** Serve the demo page at /.gatehouse/demo. */
  demo_page: z.boolean().default(true),
}).refine((f) => f.poll_timeout < f.session_timeout, {
  message: 'poll_timeout must be shorter than session_timeout', path: ['poll_timeout'],
}).refine((f) => f.heartbeat < f.session_timeout, {
  message: 'heartbeat must be shorter than session_timeout', path: ['heartbeat'],
});

export type FallbackSettings = z.output<typeof fallbackSettingsSchema>;

export const fallbackServiceFields = {
  /** Accept the HTTP fallback transport on this service's path (same admission as WebSocket). */
  fallback: z.boolean().default(true),
};
export const fallbackRootFields = {
  fallback: fallbackSettingsSchema.prefault({}),
};
