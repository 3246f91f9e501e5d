/**
 * A new configuration's `listen` section applied to the running listeners,
 * all or nothing. Listeners are matched by host and port: a kept one takes
 * its new settings, limits and certificates in place; a new one is opened; a
 * removed one stops accepting (connections it accepted stay until they end).
 * Whatever a running listener cannot take — TLS turned on or off, the PROXY
 * protocol, the client-certificate mode, the header size Node's parser was
 * built with — refuses the whole reload, naming each key and that it needs a
 * restart; so does a certificate file that cannot be used or a port that
 * cannot be bound. Nothing is changed by a refused reload.
 */
import type { AddressInfo } from 'node:net';
import type { GatehouseConfig, ListenerConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import type { ListenerOptions, ListenerServer } from './listener.js';
import { TlsConfigError } from './tls.js';

export interface ListenerChanges {
  /** The listeners serving after the reload, in the new config's order. */
  servers: ListenerServer[];
  opened: AddressInfo[];
  closed: Array<{ host: string; port: number }>;
}

function keyOf(l: ListenerConfig): string {
  return `${l.host}:${l.port}`;
}

/**
 * `open` builds (not starts) a listener for a new entry; it throws
 * TlsConfigError when the entry's certificates cannot be used.
 */
export async function reloadListeners(running: readonly ListenerServer[], next: GatehouseConfig, options: ListenerOptions,
  open: (listener: ListenerConfig) => ListenerServer): Promise<ListenerChanges> {
  const unmatched = new Set(running);
  // A listener is named by its configured host and port, or by the port it was given (a config that said 0).
  const find = (l: ListenerConfig): ListenerServer | undefined => {
    for (const s of unmatched) if (keyOf(s.config) === keyOf(l) || (s.config.host === l.host && s.address()?.port === l.port)) return s;
    return undefined;
  };
  const problems: string[] = [];
  const applies: Array<() => void> = [];
  const servers: Array<ListenerServer | undefined> = [];
  const fresh: Array<{ index: number; listener: ListenerConfig }> = [];
  next.listen.forEach((listener, index) => {
    const where = `listen.${index}`;
    const current = find(listener);
    if (current === undefined) {
      fresh.push({ index, listener });
      servers.push(undefined);
      return;
    }
    unmatched.delete(current);
    servers.push(current);
    try {
      const plan = current.prepareReload(listener, options, where);
      problems.push(...plan.restart);
      applies.push(plan.apply);
    } catch (err) {
      if (!(err instanceof TlsConfigError)) throw err;
      problems.push(`${where}.tls: ${err.message}`);
    }
  });

  const opened: ListenerServer[] = [];
  const addresses: AddressInfo[] = [];
  if (problems.length === 0) {
    for (const { index, listener } of fresh) {
      try {
        const server = open(listener);
        opened.push(server);
        addresses.push(await server.listen());
        servers[index] = server;
      } catch (err) {
        problems.push(err instanceof TlsConfigError ? `listen.${index}.tls: ${err.message}`
          : `listen.${index}: cannot listen on ${listener.host}:${listener.port}: ${(err as Error).message}`);
        break;
      }
    }
  }
  if (problems.length > 0) {
    await Promise.all(opened.map((s) => s.close()));
    throw new ConfigError('reload refused; the running configuration stays', problems);
  }

  for (const apply of applies) apply();
  const closed = [...unmatched].map((s) => ({ host: s.config.host, port: s.address()?.port ?? s.config.port }));
  // Stop accepting now; what they accepted (upgraded connections, fallback requests) ends on its own.
  for (const s of unmatched) void s.close();
  return { servers: servers as ListenerServer[], opened: addresses, closed };
}
