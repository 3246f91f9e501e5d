/**
 * Decoders of the packets the inspector reads in full or in part: CONNECT,
 * the head of PUBLISH, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT from the client; CONNACK and
 * SUBACK from the broker. Each takes the packet's bytes (fixed header
 * included, `body` = offset of the body) and checks what the spec says a
 * receiver must check; ranges point into the input so that rewriting copies
 * untouched parts verbatim.
 */
import { LEVEL_311, LEVEL_5, RC5 } from './constants.js';
import { malformed, MqttStreamError, protocolError, overLimit } from './errors.js';
import { AUTH_METHOD, readProperties, SESSION_EXPIRY, TOPIC_ALIAS, type PropertyLimits } from './properties.js';
import { PacketReader } from './reader.js';

export interface Range { start: number; end: number }

export interface ConnectPacket {
  /** Protocol level; other than 4 or 5 only `unsupported` is meaningful. */
  level: number;
  unsupported: boolean;
  flags: number;
  keepAlive: number;
  /** MQTT 5.0: the content of the CONNECT properties. */
  properties?: Range;
  /** MQTT 5.0: an Authentication Method was given (enhanced authentication). */
  authMethod: boolean;
  /** MQTT 5.0: a Session Expiry Interval other than 0 (the session outlives the connection). */
  sessionExpiry?: boolean;
  clientId: string;
  will?: { qos: number; retain: boolean; topic: string; /** will properties (5.0), topic and payload, verbatim */ raw: Range };
  username?: string;
  password?: Buffer;
}

export function readConnect(buf: Buffer, body: number, limits: PropertyLimits): ConnectPacket {
  const r = new PacketReader(buf, body, buf.length);
  const name = r.string();
  const level = r.u8();
  if (name !== 'MQTT' || (level !== LEVEL_311 && level !== LEVEL_5)) {
    if (name !== 'MQTT' && name !== 'MQIsdp') throw protocolError('mqtt_protocol_name', `protocol name ${JSON.stringify(name)}`);
    return { level, unsupported: true, flags: 0, keepAlive: 0, authMethod: false, clientId: '' };
  }
  const flags = r.u8();
  if (flags & 0x01) throw malformed('CONNECT reserved flag set');
  const hasWill = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 0x03;
  const willRetain = (flags & 0x20) !== 0;
  if (willQos === 3) throw malformed('will QoS 3');
  if (!hasWill && (willQos !== 0 || willRetain)) throw malformed('will QoS or retain without a will');
  if (level === LEVEL_311 && (flags & 0xc0) === 0x40) throw malformed('password without user name (3.1.1)');
  const keepAlive = r.u16();
  let properties: Range | undefined;
  let authMethod = false;
  let sessionExpiry = false;
  if (level === LEVEL_5) {
    properties = readProperties(r, limits, (id, v) => {
      if (id === AUTH_METHOD) authMethod = true;
      else if (id === SESSION_EXPIRY) sessionExpiry = v.u32() !== 0;
    });
  }
  const clientId = r.string();
  let will: ConnectPacket['will'];
  if (hasWill) {
    const start = r.pos;
    if (level === LEVEL_5) readProperties(r, limits);
    const topic = r.string();
    r.binary();
    will = { qos: willQos, retain: willRetain, topic, raw: { start, end: r.pos } };
  }
  const username = flags & 0x80 ? r.string() : undefined;
  const password = flags & 0x40 ? r.binary() : undefined;
  if (r.left !== 0) throw malformed('bytes after the CONNECT payload');
  return { level, unsupported: false, flags, keepAlive, properties, authMethod, sessionExpiry, clientId, will, username, password };
}

export interface PublishHead {
  /** Topic Name bytes (may be empty when a Topic Alias stands for it). */
  topic: Buffer;
  packetId: number;
  /** MQTT 5.0 Topic Alias, 0 when none. */
  alias: number;
}

/**
 * Read a PUBLISH up to its payload from `head` (which may hold only the
 * packet's beginning). The topic is returned raw; the caller checks it.
 */
export function readPublishHead(head: Buffer, body: number, qos: number, level: number, limits: PropertyLimits, maxTopic = 65_535): PublishHead {
  const r = new PacketReader(head, body, head.length);
  if (r.left >= 2 && head.readUInt16BE(body) > maxTopic) throw overLimit('mqtt_topic_too_long', `topic name over ${maxTopic} bytes`);
  const topic = r.binary();
  const packetId = qos > 0 ? r.u16() : 0;
  if (qos > 0 && packetId === 0) throw malformed('packet identifier 0');
  let alias = 0;
  if (level === LEVEL_5) {
    readProperties(r, limits, (id, pr) => {
      if (id !== TOPIC_ALIAS) return;
      alias = pr.u16();
      if (alias === 0) throw new MqttStreamError('mqtt_topic_alias_invalid', 1002, RC5.topicAliasInvalid, 'topic alias 0');
    });
  }
  return { topic, packetId, alias };
}

export interface Subscription {
  filter: string;
  /** Subscription options byte (QoS in bits 0–1). */
  options: number;
  /** Where the entry (filter with its length, and the options byte) is in the packet. */
  raw: Range;
}

export interface SubscribePacket {
  packetId: number;
  /** MQTT 5.0: the property block, its length included, verbatim. */
  properties?: Range;
  entries: Subscription[];
}

export function readSubscribe(buf: Buffer, body: number, level: number, limits: PropertyLimits, maxEntries: number): SubscribePacket {
  const r = new PacketReader(buf, body, buf.length);
  const packetId = r.u16();
  if (packetId === 0) throw malformed('packet identifier 0');
  const properties = level === LEVEL_5 ? propertyBlock(r, limits) : undefined;
  const entries: Subscription[] = [];
  while (r.left > 0) {
    if (entries.length === maxEntries) throw overLimit('mqtt_too_many_filters', `more than ${maxEntries} filters in one SUBSCRIBE`);
    const start = r.pos;
    const filter = r.string();
    const options = r.u8();
    const reserved = level === LEVEL_5 ? 0xc0 : 0xfc;
    if ((options & reserved) !== 0 || (options & 0x03) === 3 || (level === LEVEL_5 && (options & 0x30) === 0x30)) {
      throw malformed('bad subscription options');
    }
    entries.push({ filter, options, raw: { start, end: r.pos } });
  }
  if (entries.length === 0) throw protocolError('mqtt_empty_subscribe', 'SUBSCRIBE without a topic filter');
  return { packetId, properties, entries };
}

export interface UnsubscribePacket {
  packetId: number;
  filters: string[];
}

export function readUnsubscribe(buf: Buffer, body: number, level: number, limits: PropertyLimits, maxEntries: number): UnsubscribePacket {
  const r = new PacketReader(buf, body, buf.length);
  const packetId = r.u16();
  if (packetId === 0) throw malformed('packet identifier 0');
  if (level === LEVEL_5) readProperties(r, limits);
  const filters: string[] = [];
  while (r.left > 0) {
    if (filters.length === maxEntries) throw overLimit('mqtt_too_many_filters', `more than ${maxEntries} filters in one UNSUBSCRIBE`);
    filters.push(r.string());
  }
  if (filters.length === 0) throw protocolError('mqtt_empty_unsubscribe', 'UNSUBSCRIBE without a topic filter');
  return { packetId, filters };
}

/** A property block with its length prefix, as a range (walked and checked). */
function propertyBlock(r: PacketReader, limits: PropertyLimits): Range {
  const start = r.pos;
  readProperties(r, limits);
  return { start, end: r.pos };
}

export interface DisconnectPacket {
  reasonCode: number;
  /** The Session Expiry Interval it sets (seconds), when it sets one. */
  sessionExpiry?: number;
}

/** A 5.0 DISCONNECT: a reason code and properties, each left out when the packet ends before it (§3.14.2.1). */
export function readDisconnect(buf: Buffer, body: number, limits: PropertyLimits): DisconnectPacket {
  const r = new PacketReader(buf, body, buf.length);
  if (r.left === 0) return { reasonCode: RC5.success };
  const reasonCode = r.u8();
  let sessionExpiry: number | undefined;
  if (r.left > 0) readProperties(r, limits, (id, v) => { if (id === SESSION_EXPIRY) sessionExpiry = v.u32(); });
  if (r.left !== 0) throw malformed('bytes after the DISCONNECT properties');
  return { reasonCode, sessionExpiry };
}

export interface ConnackPacket {
  reasonCode: number;
  /** MQTT 5.0: property content range. */
  properties?: Range;
}

export function readConnack(buf: Buffer, body: number, level: number, limits: PropertyLimits): ConnackPacket {
  const r = new PacketReader(buf, body, buf.length);
  const ackFlags = r.u8();
  if (ackFlags & 0xfe) throw malformed('CONNACK reserved flags');
  const reasonCode = r.u8();
  const properties = level === LEVEL_5 && r.left > 0 ? readProperties(r, limits) : undefined;
  if (r.left !== 0) throw malformed('bytes after CONNACK');
  return { reasonCode, properties };
}

export interface SubackPacket {
  packetId: number;
  /** MQTT 5.0: the property block with its length prefix. */
  properties?: Range;
  codes: Range;
}

export function readSuback(buf: Buffer, body: number, level: number, limits: PropertyLimits): SubackPacket {
  const r = new PacketReader(buf, body, buf.length);
  const packetId = r.u16();
  const properties = level === LEVEL_5 ? propertyBlock(r, limits) : undefined;
  return { packetId, properties, codes: { start: r.pos, end: buf.length } };
}
