/**
 * Config keys of protocol inspection (issue 13): the `inspect:` section of a
 * relayed service (`tcp`, `websocket`), one subsection per protocol. Which
 * inspector runs on a connection is decided by its negotiated subprotocol;
 * `INSPECTED_SUBPROTOCOLS` says which subprotocols belong to which section.
 *
 * A service with `inspect` must not let a connection slip past it: every
 * subprotocol it lists (and every one it may offer a websocket backend) must
 * belong to a configured inspector, and `require_subprotocol` must be true
 * (`inspectIssues`, run by the loader's cross-checks).
 *
 * This file checks pattern syntax only; what patterns match is the
 * inspector's business (src/inspect/stomp/destinations.ts).
 */
import { z } from 'zod';
import { duration, size } from './units.js';
import { parseTemplate, type TemplatePart } from './placeholders.js';
import { mqttInspectSchema } from './inspect-mqtt.js';

/** Subprotocols each inspector handles. */
export const INSPECTED_SUBPROTOCOLS: Readonly<Record<string, readonly string[]>> = {
  stomp: ['v10.stomp', 'v11.stomp', 'v12.stomp'],
  // `mqttv3.1` is negotiated only when the service lists it; the CONNECT must still be 3.1.1 or 5.0.
  mqtt: ['mqtt', 'mqttv3.1'],
};

/** A string with placeholders ({principal.id}, {claims.NAME}). */
const template = () => z.string().superRefine((v, ctx) => {
  const t = parseTemplate(v);
  if ('error' in t) ctx.addIssue({ code: 'custom', message: t.error });
});

/**
 * Syntax of a STOMP destination pattern: `*` and `**` are whole segments
 * (between `/` or `.` separators, not next to a placeholder); broker
 * wildcards `#` and `>` are not pattern syntax. Returns the problem, if any.
 */
export function destinationPatternProblem(text: string): string | undefined {
  if (text === '') return 'an empty pattern';
  const t = parseTemplate(text);
  if ('error' in t) return t.error;
  const parts: readonly TemplatePart[] = t.parts;
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index];
    if (typeof part !== 'string') continue;
    const segments = part.split(/[/.]/);
    for (let s = 0; s < segments.length; s++) {
      const seg = segments[s];
      const nextToFill = (s === 0 && index > 0) || (s === segments.length - 1 && index < parts.length - 1);
      if (seg.includes('*') && (seg !== '*' && seg !== '**')) return `"${seg}": * and ** stand for whole segments (between / or .)`;
      if ((seg === '*' || seg === '**') && nextToFill) return `"${seg}" next to a placeholder: * and ** stand for whole segments`;
      if (seg === '#' || seg === '>') return `"${seg}" is a broker wildcard, not pattern syntax: write * (one segment) or ** (any number)`;
    }
  }
  return undefined;
}

const destinationPattern = () => z.string().superRefine((v, ctx) => {
  const problem = destinationPatternProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

export const stompInspectSchema = z.strictObject({
  /** Destinations a client may SUBSCRIBE to. None by default: list what is allowed (`["**"]` for all). */
  subscribe: z.array(destinationPattern()).default([]),
  /** Destinations a client may SEND to (inside a transaction too). None by default. */
  send: z.array(destinationPattern()).default([]),
  /** Most subscriptions open at once on one connection. Over → ERROR, close 1008. */
  max_subscriptions: z.number().int().positive().default(100),
  /** A refused frame: `error` sends an ERROR frame (with `receipt-id` when asked) then closes 1008; `close` only closes 1008. */
  on_violation: z.enum(['error', 'close']).default('error'),
  /**
   * The identity the broker sees. When set, the client's own `login` and
   * `passcode` are removed from CONNECT/STOMP and these (filled from the
   * verified identity) are put in; `host` replaces the client's when given.
   */
  connect: z.strictObject({
    login: template().optional(),
    passcode: template().optional(),
    host: template().optional(),
  }).optional(),
  /** The client's CONNECT (or STOMP) must arrive within this time of the upgrade. Over → close 1008. */
  connect_timeout: duration().default(10_000).refine((ms) => ms > 0, 'must be more than 0'),
  /** Heart-beat intervals the client asks for (either direction) are raised to at least this. */
  min_heart_beat: duration().default(1_000),
  /** Largest frame, command to NUL. Defaults to the service's max_message. Over → ERROR, close 1009. */
  max_frame: size().optional().refine((n) => n === undefined || (n > 0 && n <= 16 * 1024 * 1024), 'between 1 byte and 16 MiB'),
  /** Most headers in a frame. Over → ERROR, close 1009. */
  max_headers: z.number().int().positive().default(32),
  /** Longest command or header line, in bytes. Over → ERROR, close 1009. */
  max_header_line: size().default(4096).refine((n) => n > 0, 'must be more than 0'),
  /** Largest body. Defaults to max_frame. Over → ERROR, close 1009. */
  max_body: size().optional(),
});

export type StompInspectConfig = z.output<typeof stompInspectSchema>;

export const inspectSchema = z.strictObject({
  stomp: stompInspectSchema.optional(),
  /** MQTT 3.1.1 and 5.0: topic policy, identity injection, limits (src/config/inspect-mqtt.ts). */
  mqtt: mqttInspectSchema.optional(),
});

export type InspectConfig = z.output<typeof inspectSchema>;

/** Spread into the relayed services' schemas (tcp, websocket). */
export const inspectServiceFields = {
  /** Protocol inspection, chosen per connection by the negotiated subprotocol (docs/inspection.md). */
  inspect: inspectSchema.optional(),
};

interface InspectedService {
  subprotocols: string[];
  require_subprotocol: boolean;
  backend_protocols?: string[];
  inspect?: InspectConfig;
}

/** Rules that span a service's keys: no connection may reach the backend uninspected. */
export function inspectIssues(name: string, svc: InspectedService): string[] {
  if (svc.inspect === undefined) return [];
  const at = `services.${name}`;
  const covered = new Set(Object.entries(svc.inspect).filter(([, v]) => v !== undefined).flatMap(([k]) => INSPECTED_SUBPROTOCOLS[k] ?? []));
  if (covered.size === 0) return [`${at}.inspect: names no protocol (e.g. stomp:)`];
  const issues: string[] = [];
  if (svc.subprotocols.length === 0) issues.push(`${at}.subprotocols: an inspected service lists its subprotocols (e.g. [${[...covered].join(', ')}])`);
  if (!svc.require_subprotocol) issues.push(`${at}.require_subprotocol: must be true with inspect (a client offering no subprotocol would not be inspected)`);
  for (const key of ['subprotocols', 'backend_protocols'] as const) {
    for (const p of svc[key] ?? []) {
      if (!covered.has(p)) issues.push(`${at}.${key}: ${p} has no inspector configured (inspected: ${[...covered].join(', ')})`);
    }
  }
  return issues;
}
