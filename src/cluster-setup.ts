/**
 * What one gateway process of a cluster needs besides the gateway itself:
 *  - the shared state: on Redis with `cluster`, else the primary's (a worker
 *    of `workers: N`), else none (the gateway's own, in-process);
 *  - fallback hops: this process's id in its session ids, a hop listener for
 *    requests other processes pass on, and the way to the owner of a session
 *    made elsewhere (from the primary's table, or from Redis).
 * A process on its own (one worker, no `cluster`) has neither.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { GatehouseConfig } from './config/schema.js';
import type { Gateway, GatewayOptions } from './gateway.js';
import type { SharedState } from './shared-state/contract.js';
import type { IpcClient, IpcPort } from './cluster/ipc.js';
import { IpcBus } from './cluster/ipc-bus.js';
import { RedisBus } from './cluster/redis-bus.js';
import type { MessageBus } from './bus.js';
import { ipcSharedState } from './cluster/ipc-state.js';
import { connectRedis, type RedisClient } from './cluster/redis.js';
import { RedisSharedState } from './cluster/redis-state.js';
import { HopForwarder, HopListener, HopSigner } from './cluster/hop.js';

/** The environment variable a primary hands its workers the hop secret in (workers without `cluster`). */
export const HOP_SECRET_ENV = 'GATEHOUSE_HOP_SECRET';
/** How long a hop address read from Redis is used before it is read again. */
const DIRECTORY_TTL_MS = 5_000;

export interface ClusterPart {
  /** Options for Gateway.start. */
  gateway: Pick<GatewayOptions, 'shared' | 'fallbackRoute' | 'bus'>;
  /** Once the gateway runs: start taking hops; resolves with this process's hop id and URL (none without hops). */
  attach(gw: Gateway): Promise<{ id: string; url: string } | undefined>;
  /** A worker's primary sent the table of hop addresses. */
  setDirectory(table: Record<string, string>): void;
  close(): Promise<void>;
}

export async function clusterPart(config: GatehouseConfig, log: Logger, worker?: { ipc: IpcClient; index: number }): Promise<ClusterPart> {
  const c = config.cluster;
  let redis: { client: RedisClient; state: RedisSharedState; subscriber: RedisClient } | undefined;
  let shared: SharedState | undefined;
  let bus: MessageBus | undefined;
  if (c) {
    const client = connectRedis(c);
    client.on('error', () => undefined); // reported by the state's own warnings, not once per reconnect attempt
    const state = new RedisSharedState(client, { prefix: c.key_prefix, log });
    await waitReady(client, c.redis_timeout * 3);
    await state.start();
    if (client.status !== 'ready') log.error('redis unreachable at start: tickets are refused and limits counted in this process until it is');
    const subscriber = connectRedis(c);
    subscriber.on('error', () => undefined);
    redis = { client, state, subscriber };
    shared = state;
    bus = new RedisBus(client, subscriber, c.key_prefix);
  } else if (worker) {
    shared = ipcSharedState(worker.ipc);
    bus = new IpcBus(worker.ipc, process as unknown as IpcPort);
  }

  const secret = c?.secret ?? (worker ? process.env[HOP_SECRET_ENV] : undefined);
  if (!secret) {
    return {
      gateway: { shared, bus },
      attach: async () => undefined,
      setDirectory: () => undefined,
      close: async () => { await closeRedis(redis); },
    };
  }

  const self = redis?.state.instances.id ?? randomBytes(9).toString('base64url');
  const signer = new HopSigner(secret);
  const forwarder = new HopForwarder(signer);
  let table: Record<string, string> = {};
  const cache = new Map<string, { url?: string; until: number }>();
  /** Where `owner` takes hops: its URL; 'gone' (not alive); 'unknown' (Redis cannot say now, and no address was known). */
  const locate = async (owner: string): Promise<string | 'gone' | 'unknown'> => {
    if (!redis) return table[owner] ?? 'gone';
    const hit = cache.get(owner);
    if (hit && hit.until > Date.now()) return hit.url ?? 'gone';
    let url: string | undefined;
    try {
      url = await redis.state.instances.hopOf(owner);
    } catch {
      // Redis unreachable is no verdict on the owner: keep using the address it had
      // (a dead owner then fails the hop itself), or let the client try again.
      if (!hit?.url) return 'unknown';
      hit.until = Date.now() + DIRECTORY_TTL_MS;
      return hit.url;
    }
    cache.set(owner, { url, until: Date.now() + DIRECTORY_TTL_MS });
    if (cache.size > 10_000) cache.delete(cache.keys().next().value as string);
    return url ?? 'gone';
  };
  let listener: HopListener | undefined;
  return {
    gateway: {
      shared,
      bus,
      fallbackRoute: {
        self,
        hop: async (req, res, owner, client) => {
          const url = await locate(owner);
          if (url === 'gone' || url === 'unknown') return url === 'gone' ? 'owner_gone' : 'owner_unknown';
          const outcome = await forwarder.forward(req, res, url, client);
          if (outcome === 'passed') return 'passed';
          // A connection that broke is no verdict on the owner: the client tries again (503).
          if (outcome === 'broken') return 'owner_unknown';
          cache.delete(owner);
          return 'owner_gone';
        },
      },
    },
    async attach(gw) {
      listener = new HopListener(signer, (req, res, client) => gw.front.handleHopped(req, res, client));
      const host = c?.hop.host ?? '127.0.0.1';
      const port = c && c.hop.port > 0 ? c.hop.port + (worker?.index ?? 0) : 0;
      const url = await listener.listen(host, port);
      await redis?.state.instances.setHop(url);
      log.info({ hop: url, id: self }, 'taking fallback hops');
      return { id: self, url };
    },
    setDirectory(t) { table = t; },
    async close() {
      await listener?.close();
      forwarder.close();
      await closeRedis(redis);
    },
  };
}

async function closeRedis(redis: { client: RedisClient; state: RedisSharedState; subscriber: RedisClient } | undefined): Promise<void> {
  if (!redis) return;
  await redis.state.close();
  redis.client.disconnect();
  redis.subscriber.disconnect();
}

function waitReady(client: RedisClient, ms: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => { clearTimeout(timer); client.off('ready', done); resolve(); };
    const timer = setTimeout(done, ms);
    client.once('ready', done);
  });
}
