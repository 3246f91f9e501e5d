/**
 * The client's CONNECT: checked, then rewritten so that the broker sees the
 * identity the gateway verified — the client id derived from the principal
 * (one user cannot take over another's session), user name and password
 * replaced, the will's topic held to the publish policy. CONNECT user
 * properties are dropped (a broker plugin must not read identity the client
 * wrote); enhanced authentication (an Authentication Method) is refused: the
 * gateway authenticates.
 *
 * A session the broker keeps past the connection (3.1.1 Clean Session 0;
 * 5.0 Clean Start 0, or a Session Expiry Interval) is refused unless
 * `persistent_sessions` allows it: its subscriptions, made under the policy
 * of an earlier connection, would be resumed where the gateway cannot see
 * them, whatever the policy says now. With clean sessions only, every
 * subscription the broker holds for a connection was checked on that
 * connection, and the per-connection subscription limit is the session's.
 */
import { randomBytes } from 'node:crypto';
import { parseTemplate } from '../../config/placeholders.js';
import { fillTemplate, placeholderValue } from '../placeholders.js';
import { LEVEL_311, LEVEL_5, RC311, RC5 } from './constants.js';
import { malformed, MqttStreamError, overLimit, protocolError } from './errors.js';
import type { Decision } from './framer.js';
import { readConnect, type ConnectPacket } from './packets.js';
import { compileFilters, compileShareGroups } from './policy.js';
import { propertySpans, USER_PROPERTY } from './properties.js';
import type { MqttSessionState } from './state.js';
import { anyMatches, isValidTopicName } from './topics.js';
import { connack, connect } from './writer.js';

/** Clean Session (3.1.1) / Clean Start (5.0): the broker starts a new session, discarding any it kept. */
const CLEAN_SESSION = 0x02;

/** A refused CONNECT: the CONNACK with the code of the client's version, then close 1008. */
function refuse(level: number, reason: string, rc311: number, rc5: number, message: string, topic?: string): MqttStreamError {
  return new MqttStreamError(reason, 1008, rc5, message, connack(level, level === LEVEL_5 ? rc5 : rc311), 'CONNECT', topic);
}

export function handleConnect(s: MqttSessionState, head: Buffer, body: number): Decision {
  if (s.connected) throw protocolError('mqtt_second_connect', 'a second CONNECT');
  try {
    return rewriteConnect(s, head, body);
  } catch (err) {
    throw withConnack(err, head, body);
  }
}

/**
 * A 5.0 CONNECT refused for what is in it (malformed, over a limit) gets a
 * CONNACK with the reason code before the close, as 5.0 §4.13.1 allows (no
 * DISCONNECT may come before the CONNACK); 3.1.1 has no code for these.
 */
function withConnack(err: unknown, head: Buffer, body: number): unknown {
  if (!(err instanceof MqttStreamError) || err.lastWords) return err;
  // The protocol level follows the protocol name, "MQTT" with its length.
  const v5 = head.length > body + 6 && head.toString('latin1', body, body + 6) === '\u0000\u0004MQTT' && head[body + 6] === LEVEL_5;
  if (!v5) return err;
  return new MqttStreamError(err.reason, err.closeCode, err.reasonCode, err.message, connack(LEVEL_5, err.reasonCode), err.command ?? 'CONNECT', err.destination);
}

function rewriteConnect(s: MqttSessionState, head: Buffer, body: number): Decision {
  const c = readConnect(head, body, s.properties);
  if (c.unsupported) {
    const level = c.level >= LEVEL_5 ? LEVEL_5 : LEVEL_311;
    throw new MqttStreamError('mqtt_unsupported_version', 1002, RC5.unsupportedVersion, `protocol level ${c.level}`,
      connack(level, level === LEVEL_5 ? RC5.unsupportedVersion : RC311.unacceptableVersion));
  }
  const level = c.level;
  if (c.authMethod) throw refuse(level, 'mqtt_enhanced_auth', RC311.notAuthorized, RC5.badAuthMethod, 'enhanced authentication is not passed on');
  if (!s.config.persistent_sessions && ((c.flags & CLEAN_SESSION) === 0 || c.sessionExpiry)) {
    throw refuse(level, 'mqtt_persistent_session_refused', RC311.notAuthorized, RC5.notAuthorized, 'sessions that outlive the connection are not allowed');
  }
  s.publishFilters = compileFilters(s.config.publish, s.principal);
  s.subscribeFilters = compileFilters(s.config.subscribe, s.principal);
  s.shareGroups = compileShareGroups(s.config.share_groups, s.principal);
  if (c.will) checkWill(s, c.will, level);
  const clientId = clientIdFor(s, c.clientId);
  if (clientId === undefined) throw refuse(level, 'mqtt_client_id', RC311.identifierRejected, RC5.clientIdNotValid, 'no client id can be derived from the principal');
  const injected = s.config.connect;
  let username = c.username;
  if (injected.username !== undefined) {
    username = expand(injected.username, s);
    if (username === undefined || username.includes('\u0000')) throw refuse(level, 'mqtt_username', RC311.badCredentials, RC5.badCredentials, 'no user name can be derived from the principal');
  }
  let password = injected.password !== undefined ? Buffer.from(injected.password, 'utf8') : c.password;
  // 3.1.1 has no password without a user name [MQTT-3.1.2-22].
  if (level === LEVEL_311 && username === undefined) password = undefined;
  s.sessionExpires = c.sessionExpiry === true;
  s.accepted(level);
  return connect({
    level,
    flags: c.flags,
    keepAlive: c.keepAlive,
    properties: c.properties && withoutUserProperties(head, c.properties.start, c.properties.end),
    clientId,
    will: c.will && head.subarray(c.will.raw.start, c.will.raw.end),
    username,
    password,
  });
}

/** The will is a publish the broker makes later: the same policy as PUBLISH. */
function checkWill(s: MqttSessionState, will: NonNullable<ConnectPacket['will']>, level: number): void {
  const limits = s.config.limits;
  if (Buffer.byteLength(will.topic) > limits.topic_length) throw overLimit('mqtt_topic_too_long', 'will topic too long');
  if (!isValidTopicName(will.topic)) throw malformed('will topic is not a topic name');
  const levels = will.topic.split('/');
  if (levels.length > limits.topic_levels) throw overLimit('mqtt_topic_too_deep', 'will topic has too many levels');
  const no = (reason: string, rc5: number, message: string): MqttStreamError => refuse(level, reason, RC311.notAuthorized, rc5, message, will.topic);
  if (!anyMatches(s.publishFilters, levels)) throw no('mqtt_will_refused', RC5.notAuthorized, `will topic ${will.topic} not allowed`);
  if (will.retain && !s.config.retain) throw no('mqtt_retain_refused', RC5.retainNotSupported, 'retained will');
  if (will.qos > s.config.max_qos) throw no('mqtt_qos_refused', RC5.qosNotSupported, `will QoS ${will.qos}`);
}

/**
 * The client id the broker sees: the configured one, or the prefix before
 * the client's own (a random one when the client sent none). With a prefix,
 * a value may not contain the separator that follows it, so two principals
 * can never produce the same id.
 */
function clientIdFor(s: MqttSessionState, own: string): string | undefined {
  const { client_id, client_id_prefix } = s.config.connect;
  if (client_id !== undefined) {
    const id = expand(client_id, s);
    return id === undefined || id.includes('\u0000') ? undefined : id;
  }
  if (client_id_prefix === undefined) return own;
  const parsed = parseTemplate(client_id_prefix);
  if ('error' in parsed) return undefined;
  let prefix = '';
  for (const [i, part] of parsed.parts.entries()) {
    if (typeof part === 'string') { prefix += part; continue; }
    const value = placeholderValue(part, s.principal);
    // The config check guarantees literal text after each placeholder.
    const separator = (parsed.parts[i + 1] as string)[0];
    if (value === undefined || value.includes(separator) || value.includes('\u0000')) return undefined;
    prefix += value;
  }
  return prefix + (own === '' ? randomBytes(8).toString('hex') : own);
}

/** A template filled in for the principal; undefined when a placeholder has no value. */
function expand(template: string, s: MqttSessionState): string | undefined {
  const parsed = parseTemplate(template);
  return 'error' in parsed ? undefined : fillTemplate(parsed.parts, s.principal);
}

/** CONNECT property content without User Property entries. */
function withoutUserProperties(buf: Buffer, start: number, end: number): Buffer {
  const kept = propertySpans(buf, start, end).filter((p) => p.id !== USER_PROPERTY);
  return Buffer.concat(kept.map((p) => buf.subarray(p.start, p.end)));
}
