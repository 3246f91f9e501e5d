/**
 * Gateway-wide limits (the root `limits` section). Per-service limits live with
 * the service. Defaults follow the catalogue's table of safe defaults
 * (shared/security-catalogue.md §3); each says what happens on violation.
 */
import { z } from 'zod';
import { duration, size } from './units.js';
import { CidrSet, parseCidr } from '../http/cidr.js';

const positiveInt = () => z.number().int().positive();

/**
 * A limit or rate key: a whole number, where 0 means "no limit" — one rule
 * for every limit and rate key of the configuration (docs/configuration.md).
 * The description is what editors show from the generated JSON Schema.
 */
export const limit = (what: string) => z.number().int().nonnegative().describe(`${what} 0: no limit.`);
/** A limit in bytes ("1MiB" or a number); 0 means "no limit". */
export const sizeLimit = (what: string) => size().pipe(z.number().int().nonnegative()).describe(`${what} 0: no limit.`);

/** A count limit as code compares it: 0 ("no limit") becomes a number no count reaches (it may cross a process boundary, so no Infinity). */
export function orNoLimit(n: number): number {
  return n === 0 ? Number.MAX_SAFE_INTEGER : n;
}

export const limitsSchema = z.strictObject({
  /** Total bytes of the request line and headers. Over → 431. */
  header_bytes: size().pipe(z.number().int().positive()).default(16 * 1024),
  /** The request line (method, target, version). Over → 414. */
  request_line_bytes: size().pipe(z.number().int().positive()).default(8 * 1024),
  /** One header line (name and value). Over → 431. */
  header_line_bytes: size().pipe(z.number().int().positive()).default(8 * 1024),
  /** Most header lines in a request. Over → 431 (never truncated). */
  header_count: positiveInt().default(100),
  /** Time to receive the whole request head. Over → 408. */
  header_timeout: duration().default(10_000),
  /** Time to receive a whole request, body included (fallback POSTs). Over → 408. */
  request_timeout: duration().default(30_000),
  /** How long an idle keep-alive HTTP connection stays open. */
  keep_alive_timeout: duration().default(5_000),

  /** New handshakes per second per client address (token bucket refill). Over → 429 + Retry-After. 0 (either key): not limited. */
  handshake_rate: limit('New handshakes per second per client address.').default(20),
  /** Handshakes a client address may make at once before the rate applies (bucket size). */
  handshake_burst: limit('Handshakes a client address may make at once before the rate applies.').default(50),
  /**
   * Client addresses (CIDR ranges) the per-address limits — handshake_rate,
   * handshake_burst, connections_per_address — do not apply to. Empty by
   * default; the built-in default of `gatehouse start` exempts loopback, so
   * local tools (a conformance suite, a load test) are not refused with 429.
   */
  exempt_addresses: z.array(z.string().refine((c) => parseCidr(c) !== undefined, 'not an IP address or CIDR range')).default([]),
  /** Open connections per client address (IPv6: per /64). Over → 429. */
  connections_per_address: limit('Open connections per client address (IPv6: per /64).').default(256),
  /** Open connections in the whole gateway process. Over → 503. */
  connections_total: limit('Open connections in the whole gateway process.').default(10_000),

  /** Messages per second a client may send on one connection (burst: × rate_burst). Over → reading paused until within it. */
  message_rate: limit('Messages per second a client may send on one connection.').default(100),
  /** Bytes per second a client may send on one connection (burst: × rate_burst). Over → reading paused until within it. */
  byte_rate: sizeLimit('Bytes per second a client may send on one connection.').default(1024 * 1024),
  /** Pings and pongs per second a client may send on one connection (burst: × rate_burst); their bytes count toward byte_rate. */
  control_rate: limit('Pings and pongs per second a client may send on one connection.').default(10),
  /** Burst allowance as a multiple of the rates above. */
  rate_burst: z.number().min(1).max(100).default(2),
  /** Bytes queued toward one client before it counts as a slow consumer. Over → close 1008. */
  send_buffer: sizeLimit('Bytes queued toward one client before it counts as a slow consumer.').default(1024 * 1024),
  /** Bytes queued toward a client without any progress for this long → close 1008. */
  send_stall_timeout: duration().pipe(z.number().int().positive()).default(10_000),
});

export type LimitsConfig = z.output<typeof limitsSchema>;

/** The limits with every default applied (for code that runs without a loaded config). */
export const DEFAULT_LIMITS: LimitsConfig = limitsSchema.parse({});

const exemptSets = new WeakMap<LimitsConfig, CidrSet>();

/**
 * `exempt_addresses` as the set addresses are matched against: made once per
 * loaded configuration, however many checks and services ask for it (the
 * configuration itself stays plain data: it is cloned to workers).
 */
export function exemptAddresses(limits: LimitsConfig): CidrSet {
  let set = exemptSets.get(limits);
  if (!set) exemptSets.set(limits, (set = new CidrSet(limits.exempt_addresses)));
  return set;
}
