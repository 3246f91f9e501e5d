/**
 * A client's SUBSCRIBE and UNSUBSCRIBE. Each requested filter is allowed
 * only when every topic it can match is inside an allowed filter; a shared
 * subscription `$share/{group}/{filter}` when its filter is, and its group is
 * one of the principal's `share_groups` (otherwise anyone allowed a filter
 * could join another tenant's group and take part of its messages). Refused filters get their
 * SUBACK failure code (0x80 in 3.1.1, 0x87 in 5.0; 0x97 / 0x80 over the
 * subscription quota) while the allowed ones in the same packet go to the
 * broker; the gateway puts the codes back into the broker's SUBACK (see
 * broker.ts), or answers alone when nothing is left. A requested QoS over
 * `max_qos` is lowered, which MQTT allows a server to grant.
 */
import { LEVEL_5, RC5, SUBACK_FAILURE_311 } from './constants.js';
import { MqttStreamError, overLimit, protocolError } from './errors.js';
import { DROP, PASS, type Decision } from './framer.js';
import { readSubscribe, readUnsubscribe } from './packets.js';
import { MAX_PENDING_SUBACKS, type MqttSessionState } from './state.js';
import { anyCovers, parseRequestedFilter } from './topics.js';
import { suback, subscribe } from './writer.js';

interface Refusal { code: number; reason: string; filter: string }

export function handleSubscribe(s: MqttSessionState, head: Buffer, body: number): Decision {
  const limits = s.config.limits;
  const p = readSubscribe(head, body, s.level, s.properties, limits.filters_per_packet);
  if (s.pendingSubacks.has(p.packetId)) throw protocolError('mqtt_packet_id_in_use', `SUBSCRIBE ${p.packetId} while the last one is unanswered`);
  const codes: (number | undefined)[] = [];
  const kept: Buffer[] = [];
  const refusals: Refusal[] = [];
  let changed = false;
  for (const e of p.entries) {
    const refusal = judge(s, e.filter);
    if (refusal) {
      codes.push(refusal.code);
      refusals.push(refusal);
      changed = true;
      continue;
    }
    codes.push(undefined);
    s.subscriptions.add(e.filter);
    let raw = head.subarray(e.raw.start, e.raw.end);
    if ((e.options & 0x03) > s.config.max_qos) {
      raw = Buffer.from(raw);
      raw[raw.length - 1] = (e.options & ~0x03) | s.config.max_qos;
      changed = true;
    }
    kept.push(raw);
  }
  if (!changed) return PASS;
  if (refusals.length > 0 && s.config.on_violation === 'close') {
    const first = refusals[0];
    throw new MqttStreamError(first.reason, 1008, RC5.notAuthorized, `subscribe to ${first.filter} not allowed`, undefined, 'SUBSCRIBE', first.filter);
  }
  for (const r of refusals) s.io.refused({ reason: r.reason, command: 'SUBSCRIBE', destination: r.filter, detail: `subscribe to ${r.filter} not allowed` });
  if (kept.length === 0) {
    s.answer(suback(s.level, p.packetId, codes as number[]));
    return DROP;
  }
  if (refusals.length > 0) {
    if (s.pendingSubacks.size >= MAX_PENDING_SUBACKS) throw overLimit('mqtt_too_many_pending', 'too many SUBSCRIBEs waiting for their SUBACK');
    s.pendingSubacks.set(p.packetId, { codes, forwarded: kept.length });
  }
  return subscribe(p.packetId, p.properties && head.subarray(p.properties.start, p.properties.end), kept);
}

/** The refusal of one requested filter, or undefined when it may go to the broker. */
function judge(s: MqttSessionState, filter: string): Refusal | undefined {
  const limits = s.config.limits;
  if (Buffer.byteLength(filter) > limits.topic_length) throw overLimit('mqtt_topic_too_long', 'topic filter too long');
  const requested = parseRequestedFilter(filter);
  if (!requested) throw new MqttStreamError('mqtt_topic_filter_invalid', 1002, RC5.topicFilterInvalid, 'not a topic filter');
  if (requested.levels.length > limits.topic_levels) throw overLimit('mqtt_topic_too_deep', 'topic filter has too many levels');
  const v5 = s.level === LEVEL_5;
  if (!anyCovers(s.subscribeFilters, requested.levels)) {
    return { code: v5 ? RC5.notAuthorized : SUBACK_FAILURE_311, reason: 'mqtt_subscribe_refused', filter };
  }
  if (requested.share !== undefined && !s.shareGroups.has(requested.share)) {
    return { code: v5 ? RC5.notAuthorized : SUBACK_FAILURE_311, reason: 'mqtt_share_group_refused', filter };
  }
  if (!s.subscriptions.has(filter) && s.subscriptions.size >= limits.subscriptions) {
    return { code: v5 ? RC5.quotaExceeded : SUBACK_FAILURE_311, reason: 'mqtt_too_many_subscriptions', filter };
  }
  return undefined;
}

export function handleUnsubscribe(s: MqttSessionState, head: Buffer, body: number): Decision {
  const p = readUnsubscribe(head, body, s.level, s.properties, s.config.limits.filters_per_packet);
  for (const filter of p.filters) s.subscriptions.delete(filter);
  return PASS;
}
