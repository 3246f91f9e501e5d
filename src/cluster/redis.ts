/**
 * The connection to Redis (ioredis), from `cluster.redis`: one server by URL,
 * a primary found through Sentinel, or a Redis Cluster — each through the
 * client library's own support. Every command fails within
 * `cluster.redis_timeout`; while the connection is down, callers do not wait
 * for it at all (`ready()` is false), so a handshake never hangs on Redis.
 *
 * Every key starts with `key_prefix` and one hash tag, `{gh}`: in a Redis
 * Cluster all of them live on one slot, so each script sees all its keys.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { ClusterConfig } from '../config/cluster.js';

export type RedisClient = Redis | Cluster;

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

/** Options common to every connection: fail fast, reconnect forever with a pause of at most 2 s. */
function baseOptions(config: ClusterConfig): RedisOptions {
  return {
    commandTimeout: config.redis_timeout,
    maxRetriesPerRequest: 1,
    connectTimeout: Math.max(config.redis_timeout, 2000),
    retryStrategy: (times) => Math.min(100 * times, 2000),
    // The gateway's own, not a library's: its connection name in CLIENT LIST.
    connectionName: 'gatehouse',
  };
}

/** A new connection (the pub/sub fan-out needs a second one: a subscribed connection runs no commands). */
export function connectRedis(config: ClusterConfig): RedisClient {
  const r = config.redis;
  const base = baseOptions(config);
  if (typeof r === 'string') return new Redis(r, base);
  if ('sentinels' in r) {
    return new Redis({
      ...base,
      sentinels: r.sentinels.map(hostPort),
      name: r.name,
      password: r.password,
      sentinelPassword: r.sentinel_password,
      db: r.db,
      ...(r.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    });
  }
  return new Cluster(r.nodes.map(hostPort), {
    redisOptions: { ...base, password: r.password, ...(r.tls ? { tls: {} } : {}) },
    clusterRetryStrategy: base.retryStrategy,
  });
}

/** True while commands can be sent (connected and ready). */
export function ready(client: RedisClient): boolean {
  return client.status === 'ready';
}

/** The key for `name` under this cluster's prefix and hash tag. */
export function keyer(prefix: string): (name: string) => string {
  return (name) => `${prefix}{gh}:${name}`;
}
