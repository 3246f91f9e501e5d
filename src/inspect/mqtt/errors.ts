/**
 * Why an MQTT stream is refused: a stable reason for the audit trail, the
 * WebSocket close code the client gets, and the MQTT 5.0 reason code of the
 * DISCONNECT sent before it where the spec allows one.
 */
import { GatehouseError } from '../../errors.js';
import { RC5 } from './constants.js';

export class MqttStreamError extends GatehouseError {
  constructor(
    /** Stable reason, e.g. `mqtt_malformed`, `mqtt_packet_too_large`. */
    readonly reason: string,
    /** Close code: 1002 protocol error, 1009 too big, 1008 policy. */
    readonly closeCode: number,
    /** Reason code of the MQTT 5.0 DISCONNECT sent first. */
    readonly reasonCode: number,
    message: string,
    /** What the client gets before the close instead of a 5.0 DISCONNECT (a refusing CONNACK). */
    readonly lastWords?: Buffer,
    /** The packet type refused (for the audit trail), e.g. `PUBLISH`. */
    readonly command?: string,
    /** The topic or filter concerned. */
    readonly destination?: string,
  ) {
    super('GH_MQTT_REFUSED', message);
  }
}

export function malformed(message: string): MqttStreamError {
  return new MqttStreamError('mqtt_malformed', 1002, RC5.malformed, message);
}

export function protocolError(reason: string, message: string): MqttStreamError {
  return new MqttStreamError(reason, 1002, RC5.protocolError, message);
}

export function tooLarge(message: string): MqttStreamError {
  return new MqttStreamError('mqtt_packet_too_large', 1009, RC5.packetTooLarge, message);
}

export function overLimit(reason: string, message: string): MqttStreamError {
  return new MqttStreamError(reason, 1008, RC5.quotaExceeded, message);
}
