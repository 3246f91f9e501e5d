/**
 * What the gateway changes in the broker's answers: the CONNACK of 5.0
 * tells the client the gateway's own bounds (Topic Alias Maximum, Maximum
 * QoS, Retain Available, Maximum Packet Size — each the stricter of the
 * broker's and the configuration's), and a SUBACK for a SUBSCRIBE the
 * gateway cut gets the refused filters' codes back in their places.
 */
import { LEVEL_5 } from './constants.js';
import { malformed } from './errors.js';
import { PASS, type Decision } from './framer.js';
import { readConnack, readSuback } from './packets.js';
import { MAXIMUM_PACKET_SIZE, MAXIMUM_QOS, propertySpans, RETAIN_AVAILABLE, TOPIC_ALIAS_MAXIMUM } from './properties.js';
import { varintLength } from './reader.js';
import type { MqttSessionState } from './state.js';
import { connackWith, suback } from './writer.js';

const REPLACED = new Set([TOPIC_ALIAS_MAXIMUM, MAXIMUM_QOS, RETAIN_AVAILABLE, MAXIMUM_PACKET_SIZE]);

export function handleConnack(s: MqttSessionState, head: Buffer, body: number): Decision {
  // The return code (3.1.1) or reason code (5.0) follows the acknowledge flags; a refusal ends the connection.
  if (head[body + 1] !== 0) s.goodbye = true;
  if (s.level !== LEVEL_5) return PASS;
  const c = readConnack(head, body, LEVEL_5, s.properties);
  const spans = c.properties ? propertySpans(head, c.properties.start, c.properties.end) : [];
  const said = (id: number): number | undefined => {
    const span = spans.find((p) => p.id === id);
    return span && head.readUIntBE(span.start + 1, span.end - span.start - 1);
  };
  const limits = s.config.limits;
  const aliasMaximum = Math.min(said(TOPIC_ALIAS_MAXIMUM) ?? 0, limits.topic_aliases);
  const maxQos = Math.min(said(MAXIMUM_QOS) ?? 2, s.config.max_qos);
  const retain = s.config.retain && said(RETAIN_AVAILABLE) !== 0;
  // Maximum Packet Size counts the whole packet; the limit is on the Remaining Length.
  const maxPacket = Math.min(said(MAXIMUM_PACKET_SIZE) ?? Infinity, 1 + varintLength(limits.max_packet) + limits.max_packet);
  s.aliasMaximum = aliasMaximum;
  const ours: number[] = [];
  if (aliasMaximum > 0) ours.push(TOPIC_ALIAS_MAXIMUM, aliasMaximum >> 8, aliasMaximum & 0xff);
  if (maxQos < 2) ours.push(MAXIMUM_QOS, maxQos);
  if (!retain) ours.push(RETAIN_AVAILABLE, 0);
  ours.push(MAXIMUM_PACKET_SIZE, (maxPacket >>> 24) & 0xff, (maxPacket >>> 16) & 0xff, (maxPacket >>> 8) & 0xff, maxPacket & 0xff);
  const properties = Buffer.concat([...spans.filter((p) => !REPLACED.has(p.id)).map((p) => head.subarray(p.start, p.end)), Buffer.from(ours)]);
  return connackWith(head[body], c.reasonCode, properties);
}

export function handleSuback(s: MqttSessionState, head: Buffer, body: number): Decision {
  const p = readSuback(head, body, s.level, s.properties);
  const pending = s.pendingSubacks.get(p.packetId);
  if (!pending) return PASS;
  s.pendingSubacks.delete(p.packetId);
  const fromBroker = head.subarray(p.codes.start, p.codes.end);
  if (fromBroker.length !== pending.forwarded) throw malformed(`SUBACK ${p.packetId} with ${fromBroker.length} codes for ${pending.forwarded} filters`);
  let next = 0;
  const codes = pending.codes.map((c) => c ?? fromBroker[next++]);
  return suback(s.level, p.packetId, codes, p.properties && head.subarray(p.properties.start, p.properties.end));
}
