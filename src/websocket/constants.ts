/**
 * RFC 6455 constants: the handshake GUID, opcodes, close codes and the rule for
 * which close codes may appear on the wire.
 */

/** RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing into Sec-WebSocket-Accept. */
export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// RFC 6455 §5.2 opcodes. 3–7 and 11–15 are reserved.
export const OP_CONT = 0x0;
export const OP_TEXT = 0x1;
export const OP_BINARY = 0x2;
export const OP_CLOSE = 0x8;
export const OP_PING = 0x9;
export const OP_PONG = 0xa;

/** RFC 6455 §5.5: control frame payloads are at most 125 bytes. */
export const MAX_CONTROL_PAYLOAD = 125;
/** A close reason fits in a control frame after the 2-byte code. */
export const MAX_CLOSE_REASON = MAX_CONTROL_PAYLOAD - 2;

// RFC 6455 §7.4.1 + IANA registry. 1005/1006/1015 are local-only reporting values.
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_UNSUPPORTED_DATA = 1003;
export const CLOSE_NO_STATUS = 1005;
export const CLOSE_ABNORMAL = 1006;
export const CLOSE_INVALID_PAYLOAD = 1007;
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_TOO_BIG = 1009;
export const CLOSE_MANDATORY_EXTENSION = 1010;
export const CLOSE_INTERNAL_ERROR = 1011;
export const CLOSE_SERVICE_RESTART = 1012;
export const CLOSE_TRY_AGAIN_LATER = 1013;
export const CLOSE_BAD_GATEWAY = 1014;
export const CLOSE_TLS_HANDSHAKE = 1015;

/** Human names of close codes, for logs. */
export const CLOSE_CODE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1000: 'normal_closure',
  1001: 'going_away',
  1002: 'protocol_error',
  1003: 'unsupported_data',
  1004: 'reserved',
  1005: 'no_status_received',
  1006: 'abnormal_closure',
  1007: 'invalid_frame_payload_data',
  1008: 'policy_violation',
  1009: 'message_too_big',
  1010: 'mandatory_extension',
  1011: 'internal_error',
  1012: 'service_restart',
  1013: 'try_again_later',
  1014: 'bad_gateway',
  1015: 'tls_handshake',
});

/** Name of a close code for logs ('private' / 'registered' / 'invalid' outside the table). */
export function closeCodeName(code: number): string {
  const name = CLOSE_CODE_NAMES[code];
  if (name !== undefined) return name;
  if (code >= 4000 && code <= 4999) return 'private';
  if (code >= 3000 && code <= 3999) return 'registered';
  return 'invalid';
}

/**
 * Whether a close code may be sent or received in a Close frame
 * (RFC 6455 §7.4.1–7.4.2, IANA registry): 1000–1003, 1007–1014, 3000–4999.
 * 1004 is reserved; 1005, 1006 and 1015 must never be put on the wire;
 * 1016–2999 are unassigned / reserved for future RFCs; ≥ 5000 is out of range.
 */
export function isValidCloseCode(code: number): boolean {
  return (
    (code >= 1000 && code <= 1003) ||
    (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999)
  );
}
