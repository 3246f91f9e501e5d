/**
 * Config keys of scaling (issue 20), at the root: `workers` (processes on this
 * machine) and `cluster` (gateways on several machines sharing Redis).
 *
 *   workers: auto | N            auto = the cores Node may use; default 1 (one process, as before)
 *   cluster:
 *     redis: redis://host:6379/0 (or rediss://; or { sentinels: [...], name }; or { nodes: [...] })
 *     key_prefix: "gatehouse:"
 *     secret: ${GATEHOUSE_CLUSTER_SECRET}   authenticates fallback hops between machines
 *     hop: { host: 10.0.0.5, port: 0 }     where this machine's workers take hops
 *     redis_timeout: 1s
 *
 * See docs/scaling.md.
 */
import { z } from 'zod';
import { duration } from './units.js';

const hostPort = z.string().regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'host:port');

const redisUrl = z.string().refine((u) => {
  try {
    const p = new URL(u).protocol;
    return p === 'redis:' || p === 'rediss:';
  } catch {
    return false;
  }
}, 'a redis:// or rediss:// URL');

/** Where Redis is: one server (URL), a Sentinel-monitored primary, or a Redis Cluster. */
export const redisSchema = z.union([
  redisUrl,
  z.strictObject({
    /** Sentinels to ask for the current primary (ioredis's Sentinel support). */
    sentinels: z.array(hostPort).min(1),
    /** The monitored primary's name. */
    name: z.string().min(1),
    password: z.string().optional(),
    sentinel_password: z.string().optional(),
    db: z.number().int().min(0).default(0),
    tls: z.boolean().default(false),
  }),
  z.strictObject({
    /** Redis Cluster seed nodes (ioredis's Cluster support). Every key the gateway uses has one hash tag, so scripts stay on one slot. */
    nodes: z.array(hostPort).min(1),
    password: z.string().optional(),
    tls: z.boolean().default(false),
  }),
]);

export const clusterSchema = z.strictObject({
  redis: redisSchema,
  /** Prefix of every Redis key (several gateway fleets may share one Redis). */
  key_prefix: z.string().regex(/^[A-Za-z0-9:_.-]{0,64}$/, 'letters, digits and : _ . - (at most 64)').default('gatehouse:'),
  /**
   * Authenticates fallback requests one gateway passes to the session's owner
   * on another machine (HMAC). At least 32 characters; the same on every machine.
   */
  secret: z.string().min(32, 'at least 32 characters'),
  /** Where this machine's workers take fallback hops from the other machines. */
  hop: z.strictObject({
    /** Address to listen on and to advertise to the other machines. */
    host: z.string().min(1).default('127.0.0.1'),
    /** First port (worker i listens on port + i); 0: any free port. */
    port: z.number().int().min(0).max(65535).default(0),
  }).prefault({}),
  /** A Redis command not answered within this is failed (tickets: refused; limits: counted in this process). */
  redis_timeout: duration().refine((ms) => ms > 0, 'must be more than 0').default(1000),
});

export const clusterRootFields = {
  /** Worker processes on this machine: `auto` (the cores Node may use) or a number; 1 runs in one process. */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(256)]).default(1),
  cluster: clusterSchema.optional(),
};

export type ClusterConfig = z.output<typeof clusterSchema>;
export type RedisConfig = z.output<typeof redisSchema>;
