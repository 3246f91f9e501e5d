/**
 * Serialisation of the packets the gateway writes itself: its answers to the
 * client (CONNACK, SUBACK, PUBACK/PUBREC with a reason code, DISCONNECT) and
 * the packets it rewrites toward the broker (CONNECT with the injected
 * identity, SUBSCRIBE without the refused filters) or the client (CONNACK
 * with the gateway's own limits, SUBACK with the refused filters' codes).
 */
import { CONNACK, CONNECT, DISCONNECT, LEVEL_5, SUBACK, SUBSCRIBE } from './constants.js';
import { varintLength, writeVarint } from './reader.js';

/** A packet: fixed header byte, Remaining Length, then `parts` in order. */
export function packet(first: number, parts: readonly (Buffer | number[])[]): Buffer {
  let remaining = 0;
  for (const p of parts) remaining += p.length;
  const out = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  out[0] = first;
  let pos = writeVarint(out, 1, remaining);
  for (const p of parts) {
    if (Buffer.isBuffer(p)) pos += p.copy(out, pos);
    else for (const b of p) out[pos++] = b;
  }
  return out;
}

/** A length-prefixed field (UTF-8 string or binary data). */
export function field(value: string | Buffer): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

/** A property block from its content. */
export function propertyBlock(content: Buffer): Buffer {
  const out = Buffer.allocUnsafe(varintLength(content.length) + content.length);
  content.copy(out, writeVarint(out, 0, content.length));
  return out;
}

const NO_PROPERTIES = Buffer.from([0]);

export function connack(level: number, reasonCode: number): Buffer {
  return packet(CONNACK << 4, level === LEVEL_5 ? [[0, reasonCode], NO_PROPERTIES] : [[0, reasonCode]]);
}

/** CONNACK with a session-present flag and a rewritten property block (5.0). */
export function connackWith(ackFlags: number, reasonCode: number, properties: Buffer | undefined): Buffer {
  return packet(CONNACK << 4, properties ? [[ackFlags, reasonCode], propertyBlock(properties)] : [[ackFlags, reasonCode]]);
}

export function suback(level: number, packetId: number, codes: readonly number[], properties?: Buffer): Buffer {
  const head = [packetId >> 8, packetId & 0xff];
  return packet(SUBACK << 4, level === LEVEL_5 ? [head, properties ?? NO_PROPERTIES, codes as number[]] : [head, codes as number[]]);
}

/** PUBACK or PUBREC with a reason code (MQTT 5.0; properties omitted, §3.4.2.1). */
export function ack(type: number, packetId: number, reasonCode: number): Buffer {
  return packet(type << 4, [[packetId >> 8, packetId & 0xff, reasonCode]]);
}

/** MQTT 5.0 DISCONNECT with a reason code (properties omitted, §3.14.2.2). */
export function disconnect(reasonCode: number): Buffer {
  return packet(DISCONNECT << 4, [[reasonCode]]);
}

/** SUBSCRIBE from a packet id, its property block (5.0, verbatim) and the kept entries. */
export function subscribe(packetId: number, properties: Buffer | undefined, entries: readonly Buffer[]): Buffer {
  const head = [packetId >> 8, packetId & 0xff];
  return packet((SUBSCRIBE << 4) | 0x02, properties ? [head, properties, ...entries] : [head, ...entries]);
}

export interface ConnectFields {
  level: number;
  /** Clean start / will flags as the client sent them; user name and password bits are set here. */
  flags: number;
  keepAlive: number;
  /** MQTT 5.0 property content. */
  properties?: Buffer;
  clientId: string;
  /** Will properties, topic and payload, verbatim. */
  will?: Buffer;
  username?: string;
  password?: Buffer;
}

export function connect(f: ConnectFields): Buffer {
  let flags = f.flags & 0x3e;
  if (f.username !== undefined) flags |= 0x80;
  if (f.password !== undefined) flags |= 0x40;
  const parts: Buffer[] = [field('MQTT'), Buffer.from([f.level, flags, f.keepAlive >> 8, f.keepAlive & 0xff])];
  if (f.level === LEVEL_5) parts.push(propertyBlock(f.properties ?? Buffer.alloc(0)));
  parts.push(field(f.clientId));
  if (f.will) parts.push(f.will);
  if (f.username !== undefined) parts.push(field(f.username));
  if (f.password !== undefined) parts.push(field(f.password));
  return packet(CONNECT << 4, parts);
}
