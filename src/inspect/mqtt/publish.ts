/**
 * A client's PUBLISH, decided on its head (topic, packet id, properties)
 * while the payload streams on: the topic — or, with an MQTT 5.0 Topic
 * Alias, the topic the alias stands for — must be inside the publish
 * policy; QoS and retain within the configured bounds.
 * The topic policy is checked before QoS and retain, so a refused topic
 * gets its PUBACK/PUBREC 0x87 whatever its flags.
 *
 * The alias table mirrors the client's view: an alias set on a refused topic
 * stays bound to it, so a later PUBLISH by alias alone is refused too (an
 * alias set on an allowed topic and then rebound is no bypass).
 */
import { LEVEL_5, PUBACK, PUBREC, RC5 } from './constants.js';
import { malformed, MqttStreamError, overLimit, protocolError } from './errors.js';
import { DROP, PASS, type Decision } from './framer.js';
import { readPublishHead } from './packets.js';
import { checkedUtf8 } from './reader.js';
import type { MqttSessionState } from './state.js';
import { anyMatches, isValidTopicName } from './topics.js';
import { ack } from './writer.js';

export function handlePublish(s: MqttSessionState, flags: number, head: Buffer, body: number): Decision {
  const qos = (flags >> 1) & 0x03;
  const limits = s.config.limits;
  const h = readPublishHead(head, body, qos, s.level, s.properties, limits.topic_length);
  if (h.alias === 0 && h.topic.length > 0 && s.lastAllowed !== undefined && h.topic.equals(s.lastAllowed)) {
    // The topic of the last allowed PUBLISH (checked then): only QoS and retain are left to check.
    return checkFlags(s, flags, qos);
  }
  let levels: string[];
  if (h.alias !== 0 && h.alias > s.aliasMaximum) {
    throw new MqttStreamError('mqtt_topic_alias_invalid', 1002, RC5.topicAliasInvalid, `topic alias ${h.alias} over the maximum ${s.aliasMaximum}`);
  }
  if (h.topic.length > 0) {
    const topic = checkedUtf8(h.topic);
    if (!isValidTopicName(topic)) throw new MqttStreamError('mqtt_topic_invalid', 1002, RC5.topicNameInvalid, 'wildcard in a PUBLISH topic');
    levels = topic.split('/');
    if (levels.length > limits.topic_levels) throw overLimit('mqtt_topic_too_deep', 'topic has too many levels');
    if (h.alias !== 0) s.aliases.set(h.alias, levels);
  } else if (h.alias !== 0) {
    const bound = s.aliases.get(h.alias);
    if (bound === undefined) throw protocolError('mqtt_topic_alias_invalid', `topic alias ${h.alias} was never set`);
    levels = bound;
  } else {
    throw s.level === LEVEL_5 ? protocolError('mqtt_topic_invalid', 'PUBLISH without a topic') : malformed('PUBLISH without a topic');
  }
  if (!anyMatches(s.publishFilters, levels)) {
    return refuse(s, qos, h.packetId, RC5.notAuthorized, 'mqtt_publish_refused', levels.join('/'));
  }
  const decision = checkFlags(s, flags, qos);
  if (decision === PASS && h.alias === 0) s.lastAllowed = Buffer.from(h.topic);
  return decision;
}

/**
 * QoS and retain over what the CONNACK announced (5.0: Maximum QoS, Retain
 * Available) have no PUBACK code: the spec's answer is DISCONNECT 0x9B / 0x9A.
 */
function checkFlags(s: MqttSessionState, flags: number, qos: number): Decision {
  if (qos > s.config.max_qos) {
    throw new MqttStreamError('mqtt_qos_refused', 1008, RC5.qosNotSupported, `QoS ${qos} over ${s.config.max_qos}`, undefined, 'PUBLISH');
  }
  if ((flags & 0x01) !== 0 && !s.config.retain) {
    throw new MqttStreamError('mqtt_retain_refused', 1008, RC5.retainNotSupported, 'retained PUBLISH', undefined, 'PUBLISH');
  }
  return PASS;
}

/**
 * In 5.0 a QoS 1 or 2 PUBLISH is refused with PUBACK or PUBREC and its
 * reason code, the connection kept; otherwise (3.1.1 has no refusal code,
 * QoS 0 has no answer, or on_violation is close) the connection ends.
 */
function refuse(s: MqttSessionState, qos: number, packetId: number, reasonCode: number, reason: string, topic: string): Decision {
  const detail = `publish to ${topic} not allowed`;
  if (s.level === LEVEL_5 && qos > 0 && s.config.on_violation === 'refuse') {
    s.answer(ack(qos === 1 ? PUBACK : PUBREC, packetId, reasonCode));
    s.io.refused({ reason, command: 'PUBLISH', destination: topic, detail });
    return DROP;
  }
  throw new MqttStreamError(reason, 1008, reasonCode, detail, undefined, 'PUBLISH', topic);
}
