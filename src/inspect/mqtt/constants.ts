/**
 * MQTT control packet types and the reason codes the gateway itself writes
 * (MQTT 3.1.1 §2.2.1, §3.2.2.3, §3.9.3; MQTT 5.0 §2.1.2, §2.4).
 */
export const CONNECT = 1;
export const CONNACK = 2;
export const PUBLISH = 3;
export const PUBACK = 4;
export const PUBREC = 5;
export const PUBREL = 6;
export const PUBCOMP = 7;
export const SUBSCRIBE = 8;
export const SUBACK = 9;
export const UNSUBSCRIBE = 10;
export const UNSUBACK = 11;
export const PINGREQ = 12;
export const PINGRESP = 13;
export const DISCONNECT = 14;
/** MQTT 5.0 only. */
export const AUTH = 15;

/** Protocol levels the inspector speaks: 3.1.1 and 5.0. */
export const LEVEL_311 = 4;
export const LEVEL_5 = 5;

/**
 * The fixed-header flag nibble each packet type must carry, or -1 for
 * PUBLISH, whose flags are DUP/QoS/RETAIN (MQTT 3.1.1 §2.2.2, 5.0 §2.1.3).
 */
export const REQUIRED_FLAGS: readonly number[] = [
  -2, 0, 0, -1, 0, 0, 2, 0, 2, 0, 2, 0, 0, 0, 0, 0,
];

/** MQTT 5.0 reason codes the gateway sends. */
export const RC5 = {
  success: 0x00,
  unspecified: 0x80,
  malformed: 0x81,
  protocolError: 0x82,
  implementationSpecific: 0x83,
  unsupportedVersion: 0x84,
  clientIdNotValid: 0x85,
  badCredentials: 0x86,
  notAuthorized: 0x87,
  badAuthMethod: 0x8c,
  keepAliveTimeout: 0x8d,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  packetIdInUse: 0x91,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  topicAliasInvalid: 0x94,
  retainNotSupported: 0x9a,
  qosNotSupported: 0x9b,
  sharedSubsNotSupported: 0x9e,
} as const;

/** MQTT 3.1.1 CONNACK return codes. */
export const RC311 = {
  accepted: 0x00,
  unacceptableVersion: 0x01,
  identifierRejected: 0x02,
  badCredentials: 0x04,
  notAuthorized: 0x05,
} as const;

/** MQTT 3.1.1 SUBACK failure. */
export const SUBACK_FAILURE_311 = 0x80;
