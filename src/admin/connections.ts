/**
 * The admin API's view of open client connections: one JSON row each, and
 * the lookups the close actions use. Read from the front door's channel set
 * and the guard's traffic counts when an admin asks — nothing is kept per
 * connection for it.
 */
import type { Channel } from '../channel.js';
import { monoClock } from '../clock.js';
import type { TrafficReader } from '../observe/traffic.js';

export interface ConnectionRow {
  id: string;
  service: string;
  transport: string;
  principal: string | null;
  origin: string | null;
  client: string;
  subprotocol: string;
  /** ISO 8601, when it opened. */
  since: string | null;
  messages_in: number;
  bytes_in: number;
  messages_out: number;
  bytes_out: number;
}

export interface ConnectionFilter { service?: string; principal?: string }

export function connectionRow(channel: Channel, traffic: TrafficReader, now = Date.now(), mono = monoClock()): ConnectionRow | undefined {
  const a = channel.admission;
  if (a === undefined) return undefined;
  const t = traffic(channel);
  return {
    id: a.id,
    service: a.service.name,
    transport: channel.transport,
    principal: a.principal?.id ?? null,
    origin: a.origin,
    client: a.client.address,
    subprotocol: channel.protocol,
    since: t ? new Date(now - (mono - t.openedAt)).toISOString() : null,
    messages_in: t?.messagesIn ?? 0,
    bytes_in: t?.bytesIn ?? 0,
    messages_out: t?.messagesOut ?? 0,
    bytes_out: t?.bytesOut ?? 0,
  };
}

/** Open channels matching the filter (every given field must match exactly). */
export function* matching(channels: Iterable<Channel>, filter: ConnectionFilter): Generator<Channel> {
  for (const ch of channels) {
    const a = ch.admission;
    if (a === undefined || ch.closed) continue;
    if (filter.service !== undefined && a.service.name !== filter.service) continue;
    if (filter.principal !== undefined && a.principal?.id !== filter.principal) continue;
    yield ch;
  }
}

export function findById(channels: Iterable<Channel>, id: string): Channel | undefined {
  for (const ch of channels) if (!ch.closed && ch.admission?.id === id) return ch;
  return undefined;
}

export interface TopEntry { name: string; connections: number; messages_in: number; messages_out: number; bytes_in: number; bytes_out: number }

/** The busiest services and principals by open connections and traffic (for the dashboard). */
export function busiest(channels: Iterable<Channel>, traffic: TrafficReader, limit = 10): { services: TopEntry[]; principals: TopEntry[] } {
  const services = new Map<string, TopEntry>();
  const principals = new Map<string, TopEntry>();
  const add = (map: Map<string, TopEntry>, name: string, ch: Channel): void => {
    let e = map.get(name);
    if (e === undefined) map.set(name, e = { name, connections: 0, messages_in: 0, messages_out: 0, bytes_in: 0, bytes_out: 0 });
    const t = traffic(ch);
    e.connections++;
    e.messages_in += t?.messagesIn ?? 0;
    e.messages_out += t?.messagesOut ?? 0;
    e.bytes_in += t?.bytesIn ?? 0;
    e.bytes_out += t?.bytesOut ?? 0;
  };
  for (const ch of matching(channels, {})) {
    const a = ch.admission;
    if (a === undefined) continue;
    add(services, a.service.name, ch);
    if (a.principal !== undefined) add(principals, a.principal.id, ch);
  }
  const top = (m: Map<string, TopEntry>): TopEntry[] =>
    [...m.values()].sort((x, y) => y.connections - x.connections || (y.bytes_in + y.bytes_out) - (x.bytes_in + x.bytes_out)).slice(0, limit);
  return { services: top(services), principals: top(principals) };
}
