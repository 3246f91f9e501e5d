/**
 * The client's DISCONNECT. A 5.0 DISCONNECT may set the Session Expiry
 * Interval, but not to other than 0 when the CONNECT's was 0: that is a
 * Protocol Error, and the server does not take it as a DISCONNECT (MQTT 5.0
 * §3.14.2.2.2). Passed on, a broker that took it anyway would keep the
 * session past the connection: a persistent session made at the end, behind
 * the CONNECT's `persistent_sessions` check. So the gateway answers it as the
 * spec has a server answer it — DISCONNECT 0x82, then the close — and the
 * broker never gets it: it sees the connection end without a DISCONNECT, so
 * the session (its expiry 0) ends with the connection, and a will is
 * published, as after any protocol error (§3.1.2.5).
 */
import { LEVEL_5, RC5 } from './constants.js';
import { MqttStreamError } from './errors.js';
import { PASS, type Decision } from './framer.js';
import { readDisconnect } from './packets.js';
import type { MqttSessionState } from './state.js';

export function handleDisconnect(s: MqttSessionState, head: Buffer, body: number): Decision {
  if (s.level === LEVEL_5 && !s.sessionExpires) {
    const d = readDisconnect(head, body, s.properties);
    if (d.sessionExpiry) {
      throw new MqttStreamError('mqtt_disconnect_session_expiry', 1002, RC5.protocolError,
        `DISCONNECT sets a Session Expiry Interval of ${d.sessionExpiry} s after a CONNECT that set none`, undefined, 'DISCONNECT');
    }
  }
  s.goodbye = true;
  return PASS;
}
