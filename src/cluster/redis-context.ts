/**
 * What every store on Redis shares: the client, the key names, the scripts,
 * and the warning when a limit falls back to this process's count. Its own
 * file so that the stores (redis-state.ts) and the instance registry
 * (redis-instances.ts) both take it without importing each other.
 */
import type { Logger } from 'pino';
import { SharedStateUnavailable } from '../errors.js';
import { keyer, ready, type RedisClient } from './redis.js';
import { SCRIPTS, type ScriptName } from './redis-scripts.js';

const WARN_EVERY_MS = 10_000;

/** What every store here shares: the client, the key names, the fallback warning. */
export class RedisContext {
  readonly key: (name: string) => string;
  private lastWarning = 0;

  constructor(readonly client: RedisClient, prefix: string, readonly log: Logger) {
    for (const [name, def] of Object.entries(SCRIPTS)) client.defineCommand(name, def);
    this.key = keyer(prefix);
  }

  get ready(): boolean { return ready(this.client); }

  /** Runs a script; throws SharedStateUnavailable at once while Redis is not connected. */
  async script(name: ScriptName, keys: string[], args: Array<string | number>): Promise<number> {
    if (!this.ready) throw new SharedStateUnavailable('redis is not connected');
    const fn = (this.client as unknown as Record<string, (...a: Array<string | number>) => Promise<number>>)[name];
    try {
      return await fn.call(this.client, ...keys, ...args);
    } catch (err) {
      throw new SharedStateUnavailable(`redis: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Runs one command; throws SharedStateUnavailable as `script` does. */
  async command<T>(run: (c: RedisClient) => Promise<T>): Promise<T> {
    if (!this.ready) throw new SharedStateUnavailable('redis is not connected');
    try {
      return await run(this.client);
    } catch (err) {
      throw new SharedStateUnavailable(`redis: ${(err as Error).message}`, { cause: err });
    }
  }

  /** A limit falls back to this process's count: say so, at most every 10 s. */
  fellBack(what: string, err: unknown): void {
    const now = Date.now();
    if (now - this.lastWarning < WARN_EVERY_MS) return;
    this.lastWarning = now;
    this.log.warn({ err: (err as Error).message, limits: what }, 'redis unavailable: limits are counted in this process until it is back');
  }
}
