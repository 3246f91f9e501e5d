/**
 * The MQTT inspector in a relay (subprotocols `mqtt` and, when the service
 * lists it, `mqttv3.1`; docs/inspection.md): the relay's pieces go to an
 * MqttSession, whose verdicts become the relay's actions.
 *
 * MQTT over WebSocket is binary only [MQTT-6.0.0-1]: a text message from
 * the client closes the connection with 1003, one from a WebSocket broker
 * with 1014. Packets may span messages and share them; what the session
 * forwards from one message leaves as one message (several pieces are sent
 * as fragments of it), so a message carrying one allowed PUBLISH is
 * forwarded as the very buffer that arrived.
 *
 * A broker that closes the connection unasked — not after a DISCONNECT of
 * either side or a CONNACK refusing the CONNECT (3.1.1 has no other way to
 * end a session: takeover, keep-alive, a broker's own error) — gets the
 * client 1014, audited `mqtt_backend_closed`, not a normal 1000.
 */
import type { Inspector, InspectorActions, InspectorContext, Violation } from '../../relay/inspector.js';
import type { MqttInspectConfig } from '../../config/inspect-mqtt.js';
import { MqttSession } from './session.js';
import type { MqttIO, MqttRefusal } from './state.js';

export class MqttInspector implements Inspector, MqttIO {
  readonly name = 'mqtt';
  private readonly actions: InspectorActions;
  private readonly session: MqttSession;

  constructor(context: InspectorContext, config: MqttInspectConfig) {
    this.actions = context.actions;
    this.session = new MqttSession(config, context.admission.principal, this);
  }

  fromClient(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.session.dispose();
      this.actions.end({ code: 1003, reason: 'mqtt_text_message', detail: 'MQTT over WebSocket is binary' }, 'to_backend');
      return;
    }
    this.session.fromClient(data);
  }

  fromBackend(data: Buffer, isBinary: boolean): void {
    if (!isBinary) {
      this.session.dispose();
      this.actions.end({ code: 1014, reason: 'mqtt_backend_text_message', detail: 'the broker sent a text message' }, 'to_client');
      return;
    }
    this.session.fromBackend(data);
  }

  /** The broker closes after a DISCONNECT (either side's) or a refusing CONNACK; any other end is a fault (1014). */
  backendEnded(): Violation | undefined {
    if (this.session.goodbye) return undefined;
    return { code: 1014, reason: 'mqtt_backend_closed', detail: 'the broker closed the connection without a DISCONNECT or a refusing CONNACK' };
  }

  end(): void {
    this.session.dispose();
  }

  toBackend(pieces: Buffer[]): void {
    send(pieces, this.actions, true);
  }

  toClient(pieces: Buffer[]): void {
    send(pieces, this.actions, false);
  }

  refused(refusal: MqttRefusal): void {
    this.actions.refused(refusal, 'to_backend');
  }

  close(code: number, refusal: MqttRefusal, lastWords?: Buffer, fromBroker = false): void {
    if (lastWords) this.actions.sendToClient(lastWords, true);
    this.actions.end({ code, ...refusal }, fromBroker ? 'to_client' : 'to_backend');
  }
}

/** One message: a single piece as it is, several as fragments of one message. */
function send(pieces: Buffer[], actions: InspectorActions, toBackend: boolean): void {
  if (pieces.length === 1) {
    if (toBackend) actions.sendToBackend(pieces[0], true);
    else actions.sendToClient(pieces[0], true);
    return;
  }
  const last = pieces.length - 1;
  for (let i = 0; i <= last; i++) {
    if (toBackend) actions.pieceToBackend(pieces[i], true, i === 0, i === last);
    else actions.pieceToClient(pieces[i], true, i === 0, i === last);
  }
}
