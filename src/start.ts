/**
 * `gatehouse start` with `workers: N` (N > 1): this process becomes the
 * primary (src/cluster/primary.ts) and forks N workers, each running the whole
 * gateway on the shared listening ports. A worker runs `start` again
 * (node:cluster re-runs the entry point) and takes the worker path below: its
 * shared state is the primary's (over IPC), or Redis when `cluster` says so;
 * it obeys the primary's reload and stop, not signals of its own (except
 * SIGTERM, which drains it; the primary then forks another).
 */
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { ConfigError } from './errors.js';
import type { GatehouseConfig } from './config/schema.js';
import { loadConfigFile } from './config/load.js';
import { createLogger } from './observe/log.js';
import { Gateway } from './gateway.js';
import { IpcClient } from './cluster/ipc.js';
import { Primary, type PrimaryMessage, type WorkerMessage } from './cluster/primary.js';
import { clusterPart, HOP_SECRET_ENV } from './cluster-setup.js';
import { primaryAdmin } from './primary-admin.js';
import type { AdminServer } from './admin/server.js';
import { randomBytes } from 'node:crypto';

/** How many processes a configuration asks for: `auto` is the cores this process may use. */
export function workerCount(config: GatehouseConfig): number {
  return config.workers === 'auto' ? availableParallelism() : config.workers;
}

/** This process's part: one process as before, the primary of N workers, or one of them. */
export function roleOf(config: GatehouseConfig): 'single' | 'primary' | 'worker' {
  if (cluster.isWorker) return 'worker';
  return workerCount(config) > 1 ? 'primary' : 'single';
}

export type Announce = (addresses: Gateway['addresses']) => void;

/** The primary: forks the workers, carries the signals; resolves with the exit status. */
export async function runPrimary(file: string | undefined, config: GatehouseConfig, announce: Announce): Promise<number> {
  const log = createLogger(config.log.level).child({ role: 'primary' });
  let drainTimeout = config.shutdown.drain_timeout;
  const count = workerCount(config);
  const primary = new Primary({
    workers: count,
    log,
    drainTimeout: () => drainTimeout,
    check: () => {
      if (!file) return ['running on the built-in config: nothing to reload'];
      try {
        const next = loadConfigFile(file);
        Gateway.validate(next);
        if (workerCount(next) !== count) log.warn({ running: count, configured: workerCount(next) }, 'workers: a new number takes a restart');
        drainTimeout = next.shutdown.drain_timeout;
        return [];
      } catch (err) {
        return err instanceof ConfigError && err.issues.length > 0 ? err.issues : [(err as Error).message];
      }
    },
    listening: (addresses) => announce(addresses as Gateway['addresses']),
    // Fallback hops between the workers are signed with a secret of this run (with `cluster`: the configured one).
    env: config.cluster ? {} : { [HOP_SECRET_ENV]: randomBytes(32).toString('base64url') },
  });
  let admin: AdminServer | undefined;
  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ signal }, 'shutdown requested: every worker drains');
      void primary.stop().then(() => admin?.close()).then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => primary.reload());
    primary.start().then(async () => {
      log.info({ workers: count, pids: primary.pids }, 'workers listening');
      if (!config.admin) return;
      admin = primaryAdmin(config.admin, primary, log, { reload: () => primary.reload(), drain: () => stop('admin drain') });
      const a = await admin.listen();
      process.stderr.write(`gatehouse: admin on http://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}/\n`);
    }, (err: Error) => { log.error({ err: err.message }, 'a worker failed to start'); resolve(1); });
  });
}

/** One worker: the gateway with the shared state of the cluster; the primary says when to reload and stop. */
export async function runWorker(file: string | undefined, config: GatehouseConfig): Promise<number> {
  const index = Number(process.env.GATEHOUSE_WORKER ?? '0');
  const log = createLogger(config.log.level).child({ worker: index });
  const ipc = new IpcClient(process as unknown as ConstructorParameters<typeof IpcClient>[0]);
  const part = await clusterPart(config, log, { ipc, index });
  const gw = await Gateway.start(workerConfig(config), { logger: log, ...part.gateway });
  const hop = await part.attach(gw);
  // The terminal's Ctrl-C and SIGHUP reach the whole process group: the primary acts on them for everyone.
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  return new Promise<number>((resolve) => {
    const stop = (timeoutMs?: number): void => {
      gw.stop(timeoutMs).then(() => part.close()).then(() => resolve(0), (err: unknown) => { log.error({ err }, 'shutdown failed'); resolve(1); });
    };
    process.once('SIGTERM', () => stop());
    // The primary is gone (killed): so is the state this worker shared; stop at once.
    process.once('disconnect', () => stop(0));
    process.on('message', (m: PrimaryMessage) => {
      if (m?.gh === 'stop') stop(m.timeoutMs);
      else if (m?.gh === 'hops') part.setDirectory(m.table);
      else if (m?.gh === 'ask') void answer(gw, m.what, m.args).then((value) => process.send?.({ gh: 'answer', id: m.id, value } satisfies WorkerMessage));
      else if (m?.gh === 'reload' && file) {
        gw.reload(workerConfig(loadConfigFile(file))).catch((err: unknown) => log.error({ err }, 'reload refused: the running configuration stays'));
      }
    });
    process.send?.({ gh: 'ready', addresses: gw.addresses, ...(hop ? { hop } : {}) } satisfies WorkerMessage);
  });
}

/** What the primary's admin listener asks a worker. */
async function answer(gw: Gateway, what: string, args: unknown[]): Promise<unknown> {
  if (what === 'metrics') return (await Promise.all(gw.metrics.registries.map((r) => r.getMetricsAsJSON()))).flat();
  if (what === 'publish') return gw.publish(String(args[0]), String(args[1]), args[2]);
  return undefined;
}

/** A worker's configuration: the admin listener is the primary's (one port, every worker's numbers). */
function workerConfig(config: GatehouseConfig): GatehouseConfig {
  return { ...config, admin: undefined };
}
