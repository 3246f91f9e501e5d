/**
 * Config of the MQTT inspector (`inspect.mqtt` of a tcp or websocket
 * service): the topic policy, identity injection into CONNECT, what a
 * violation does, and the parser's limits.
 */
import { z } from 'zod';
import { parseTemplate } from './placeholders.js';
import { duration, size } from './units.js';

/** MQTT filter syntax: `+` and `#` fill a whole level, `#` only last. */
function isFilterSyntax(filter: string): boolean {
  const levels = filter.split('/');
  return filter.length > 0 && levels.every((l, i) => l === '+' || (l === '#' && i === levels.length - 1) || !/[+#]/.test(l));
}

/**
 * A template whose text, once each placeholder is read as literal text, must
 * pass `problem` (which returns what is wrong, or undefined).
 */
const templateWhere = (problem: (literal: string, template: string) => string | undefined) => z.string().superRefine((t, ctx) => {
  const parsed = parseTemplate(t);
  if ('error' in parsed) {
    ctx.addIssue({ code: 'custom', message: parsed.error });
    return;
  }
  const found = problem(parsed.parts.map((p) => (typeof p === 'string' ? p : 'x')).join(''), t);
  if (found !== undefined) ctx.addIssue({ code: 'custom', message: found });
});

/** A topic filter template: a valid MQTT filter once each placeholder is read as literal text. */
const filterTemplate = templateWhere((literal, t) => (t.startsWith('$share/') || !isFilterSyntax(literal)
  ? `not a topic filter: ${JSON.stringify(t)} ("+" and "#" fill a whole level, "#" only last)`
  : undefined));

/** A shared subscription's group name (`$share/{group}/...`): one level's text, no wildcard, once filled. */
const shareGroupTemplate = templateWhere((literal, t) => (/[/+#\u0000]/.test(literal)
  ? `not a share group name: ${JSON.stringify(t)} (no "/", "+" or "#")`
  : undefined));

const textTemplate = z.string().superRefine((t, ctx) => {
  const parsed = parseTemplate(t);
  if ('error' in parsed) ctx.addIssue({ code: 'custom', message: parsed.error });
});

/**
 * A client id prefix must map principals to prefixes one-to-one: each
 * placeholder is followed by literal text, whose first character the value
 * may not contain (checked per connection). "{principal.id}-" is fine;
 * "{principal.id}" alone would let `alice-x` and `alice` + `-x...` collide.
 */
const prefixTemplate = textTemplate.refine((t) => {
  const parsed = parseTemplate(t);
  return 'error' in parsed || parsed.parts.every((p, i, parts) => typeof p === 'string' || typeof parts[i + 1] === 'string');
}, 'each placeholder in client_id_prefix must be followed by a separator, e.g. "{principal.id}-"');

export const mqttConnectSchema = z.strictObject({
  /** The client identifier the broker sees, e.g. "{principal.id}" (the client's own is ignored). */
  client_id: textTemplate.optional(),
  /** Or: this prefix before the client's own identifier, e.g. "{principal.id}-". */
  client_id_prefix: prefixTemplate.optional(),
  /** User name the broker sees (the client's is replaced), e.g. "{principal.id}". */
  username: textTemplate.optional(),
  /** Password the broker sees (the client's is replaced); use ${ENV} for the secret. */
  password: z.string().optional(),
}).refine((c) => c.client_id === undefined || c.client_id_prefix === undefined, 'client_id and client_id_prefix exclude each other');

export const mqttLimitsSchema = z.strictObject({
  /** Largest packet (Remaining Length) after CONNECT, either direction. Over → close 1009 (5.0: DISCONNECT 0x95 first). */
  max_packet: size().default(1024 * 1024).refine((n) => n >= 64 && n <= 268_435_455, 'between 64 bytes and 256 MiB'),
  /** Largest packet before CONNECT was accepted (the CONNECT itself). */
  max_connect_packet: size().default(64 * 1024).refine((n) => n >= 64, 'at least 64 bytes'),
  /** CONNECT must arrive within this time. Over → close 1008. */
  connect_timeout: duration().default(10_000).refine((ms) => ms > 0, 'must be more than 0'),
  /** Longest topic name or filter in bytes. */
  topic_length: z.number().int().min(1).max(65_535).default(1024),
  /** Most levels in a topic name or filter. */
  topic_levels: z.number().int().min(1).default(32),
  /** Most properties in one property block (MQTT 5.0). */
  properties: z.number().int().min(1).default(32),
  /** Largest property block in bytes (MQTT 5.0). */
  properties_size: size().default(8 * 1024),
  /** Most topic filters in one SUBSCRIBE or UNSUBSCRIBE. */
  filters_per_packet: z.number().int().min(1).default(32),
  /** Most subscriptions a connection holds at once. */
  subscriptions: z.number().int().min(1).default(100),
  /** Most topic aliases a client may use (5.0); the broker's CONNACK value is lowered to it. */
  topic_aliases: z.number().int().min(0).max(65_535).default(32),
});

export const mqttInspectSchema = z.strictObject({
  /** Topic filters the principal may publish to. Empty: none. */
  publish: z.array(filterTemplate).default([]),
  /** Topic filters the principal may subscribe within. Empty: none. */
  subscribe: z.array(filterTemplate).default([]),
  /**
   * Share groups the principal may join with `$share/{group}/{filter}` (the
   * filter still within `subscribe`), e.g. "{principal.id}", "workers-{claims.team}".
   * Empty: no shared subscriptions.
   */
  share_groups: z.array(shareGroupTemplate).default([]),
  /**
   * false: refuse a CONNECT asking for a session the broker keeps past the
   * connection (3.1.1 Clean Session 0; 5.0 Clean Start 0 or a Session Expiry
   * Interval). true: pass it — the subscriptions of a resumed session were
   * checked under the policy of the connection that made them, and the
   * gateway cannot see them (docs/inspection.md, "Persistent sessions").
   */
  persistent_sessions: z.boolean().default(false),
  /** false: refuse PUBLISH (and wills) with the retain flag. */
  retain: z.boolean().default(true),
  /** Highest QoS; SUBSCRIBE asks are lowered to it, a PUBLISH above it is refused. */
  max_qos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(2),
  /** What the broker sees of the identity. */
  connect: mqttConnectSchema.default({}),
  /**
   * refuse: say no in MQTT where it can (SUBACK failure codes, 5.0 PUBACK/PUBREC 0x87),
   * close 1008 where it cannot. close: every violation closes 1008.
   */
  on_violation: z.enum(['refuse', 'close']).default('refuse'),
  limits: mqttLimitsSchema.default(() => mqttLimitsSchema.parse({})),
});

export type MqttInspectConfig = z.output<typeof mqttInspectSchema>;
export type MqttLimits = z.output<typeof mqttLimitsSchema>;
