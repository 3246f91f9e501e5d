/**
 * MQTT 5.0 properties (§2.2.2): a length, then identifier/value pairs. Every
 * property is type-checked and counted against the limits; an unknown
 * identifier, or a property twice that may appear once, is malformed — a
 * second Topic Alias the broker reads differently from the gateway would be
 * a bypass.
 */
import { malformed, overLimit } from './errors.js';
import { checkedUtf8, PacketReader } from './reader.js';

export const PAYLOAD_FORMAT = 0x01;
export const SUBSCRIPTION_ID = 0x0b;
export const SESSION_EXPIRY = 0x11;
export const ASSIGNED_CLIENT_ID = 0x12;
export const AUTH_METHOD = 0x15;
export const AUTH_DATA = 0x16;
export const TOPIC_ALIAS_MAXIMUM = 0x22;
export const TOPIC_ALIAS = 0x23;
export const MAXIMUM_QOS = 0x24;
export const RETAIN_AVAILABLE = 0x25;
export const USER_PROPERTY = 0x26;
export const MAXIMUM_PACKET_SIZE = 0x27;

const BYTE = 1;
const U16 = 2;
const U32 = 3;
const VARINT = 4;
const STRING = 5;
const BINARY = 6;
const PAIR = 7;

/** Value type by property identifier; 0 = not a property. */
const TYPES = new Uint8Array(0x2b);
for (const [id, type] of [
  [0x01, BYTE], [0x02, U32], [0x03, STRING], [0x08, STRING], [0x09, BINARY], [0x0b, VARINT],
  [0x11, U32], [0x12, STRING], [0x13, U16], [0x15, STRING], [0x16, BINARY], [0x17, BYTE],
  [0x18, U32], [0x19, BYTE], [0x1a, STRING], [0x1c, STRING], [0x1f, STRING], [0x21, U16],
  [0x22, U16], [0x23, U16], [0x24, BYTE], [0x25, BYTE], [0x26, PAIR], [0x27, U32],
  [0x28, BYTE], [0x29, BYTE], [0x2a, BYTE],
]) TYPES[id] = type;

export interface PropertyLimits {
  /** Most properties in one block (user properties included). */
  count: number;
  /** Largest property block in bytes. */
  bytes: number;
}

/** Called per property with the reader at its value; read it or leave it (the block walker skips it). */
export type PropertyVisitor = (id: number, r: PacketReader) => void;

/**
 * Walk a property block at the reader's position, checking every value.
 * Returns the block's content range [start, end) (after its length).
 */
export function readProperties(r: PacketReader, limits: PropertyLimits, visit?: PropertyVisitor): { start: number; end: number } {
  const length = r.varint();
  if (length > limits.bytes) throw overLimit('mqtt_properties_too_large', `property block of ${length} bytes over the limit of ${limits.bytes}`);
  const start = r.pos;
  const end = start + length;
  if (end > r.end) throw malformed('property block longer than the packet');
  if (length === 0) return { start, end };
  const outer = r.end;
  r.end = end;
  let seenLow = 0;
  let seenHigh = 0;
  let count = 0;
  try {
    while (r.pos < end) {
      if (++count > limits.count) throw overLimit('mqtt_too_many_properties', `more than ${limits.count} properties`);
      const id = r.varint();
      const type = id < TYPES.length ? TYPES[id] : 0;
      if (type === 0) throw malformed(`unknown property 0x${id.toString(16)}`);
      if (id !== USER_PROPERTY && id !== SUBSCRIPTION_ID) {
        const bit = 1 << (id & 31);
        if (id < 32) {
          if (seenLow & bit) throw malformed(`property 0x${id.toString(16)} twice`);
          seenLow |= bit;
        } else {
          if (seenHigh & bit) throw malformed(`property 0x${id.toString(16)} twice`);
          seenHigh |= bit;
        }
      }
      const valueStart = r.pos;
      if (visit) {
        visit(id, r);
        r.pos = valueStart;
      }
      skipValue(r, type);
    }
  } finally {
    r.end = outer;
  }
  return { start, end };
}

function skipValue(r: PacketReader, type: number): void {
  switch (type) {
    case BYTE: r.u8(); break;
    case U16: r.u16(); break;
    case U32: r.u32(); break;
    case VARINT: r.varint(); break;
    case STRING: checkedUtf8(r.binary()); break;
    case BINARY: r.binary(); break;
    case PAIR: checkedUtf8(r.binary()); checkedUtf8(r.binary()); break;
  }
}

export interface PropertySpan { id: number; start: number; end: number }

/** The properties of a block already checked by `readProperties`, each with its bytes' range (identifier included). */
export function propertySpans(buf: Buffer, start: number, end: number): PropertySpan[] {
  const r = new PacketReader(buf, start, end);
  const spans: PropertySpan[] = [];
  while (r.pos < end) {
    const from = r.pos;
    const id = r.varint();
    skipValue(r, TYPES[id]);
    spans.push({ id, start: from, end: r.pos });
  }
  return spans;
}
