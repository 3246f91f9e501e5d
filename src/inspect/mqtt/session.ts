/**
 * The MQTT inspector of one connection: both directions framed by a
 * PacketFramer each, every client packet held to the policy of the
 * principal, the broker's answers adjusted where the gateway answered part
 * of a request itself.
 *
 * What it does with traffic goes through `MqttIO`: bytes toward the broker,
 * bytes toward the client, a refusal to record, the end of the connection.
 * The per-packet rules live in their own files (connect, publish, subscribe,
 * broker); this file owns the state and the order of things.
 */
import type { PlaceholderIdentity } from '../placeholders.js';
import type { MqttInspectConfig } from '../../config/inspect-mqtt.js';
import { AUTH, CONNACK, CONNECT, DISCONNECT, LEVEL_5, PINGRESP, PUBLISH, SUBACK, SUBSCRIBE, UNSUBACK, UNSUBSCRIBE, RC5 } from './constants.js';
import { MqttStreamError, protocolError, tooLarge } from './errors.js';
import { PacketFramer, PASS, type Decision, type PacketOwner } from './framer.js';
import type { PropertyLimits } from './properties.js';
import type { Filter } from './topics.js';
import { handleConnect } from './connect.js';
import { handleDisconnect } from './disconnect.js';
import { handlePublish } from './publish.js';
import { handleSubscribe, handleUnsubscribe } from './subscribe.js';
import { handleConnack, handleSuback } from './broker.js';
import { disconnect } from './writer.js';
import type { MqttIO, MqttSessionState, PendingSuback } from './state.js';

/** Most gateway answers waiting for the broker's stream to reach a packet boundary. */
const MAX_QUEUED_ANSWERS = 1024;

export class MqttSession implements MqttSessionState {
  // The state the rules read and change: see MqttSessionState (state.ts).
  level = 0;
  readonly properties: PropertyLimits;
  publishFilters: Filter[] = [];
  subscribeFilters: Filter[] = [];
  shareGroups: ReadonlySet<string> = new Set();
  readonly aliases = new Map<number, string[]>();
  aliasMaximum = 0;
  readonly subscriptions = new Set<string>();
  readonly pendingSubacks = new Map<number, PendingSuback>();
  lastAllowed?: Buffer;
  sessionExpires = false;
  /** The client sent DISCONNECT, or the broker a DISCONNECT or a refusing CONNACK: the broker may close now. */
  goodbye = false;
  private readonly fromClientFramer: PacketFramer;
  private readonly fromBrokerFramer: PacketFramer;
  private queuedAnswers: Buffer[] = [];
  private connectTimer?: NodeJS.Timeout;
  private ended = false;

  constructor(
    readonly config: MqttInspectConfig,
    readonly principal: PlaceholderIdentity | undefined,
    readonly io: MqttIO,
  ) {
    const limits = config.limits;
    this.properties = { count: limits.properties, bytes: limits.properties_size };
    this.fromClientFramer = new PacketFramer(new ClientPackets(this), limits.max_connect_packet);
    // Broker packets are streamed (PUBLISH) or small (CONNACK, SUBACK): any size the protocol allows.
    this.fromBrokerFramer = new PacketFramer(new BrokerPackets(this), 268_435_455);
    this.connectTimer = setTimeout(() => this.fail(new MqttStreamError('mqtt_connect_timeout', 1008, RC5.keepAliveTimeout,
      `no CONNECT within ${limits.connect_timeout} ms`)), limits.connect_timeout);
    this.connectTimer.unref();
  }

  get connected(): boolean {
    return this.level !== 0;
  }

  /** Bytes from the client. */
  fromClient(chunk: Buffer): void {
    if (this.ended) return;
    const out: Buffer[] = [];
    try {
      this.fromClientFramer.feed(chunk, out);
    } catch (err) {
      if (out.length > 0) this.io.toBackend(out);
      this.fail(err);
      return;
    }
    if (out.length > 0 && !this.ended) this.io.toBackend(out);
  }

  /** Bytes from the broker. */
  fromBackend(chunk: Buffer): void {
    if (this.ended) return;
    const out: Buffer[] = [];
    try {
      this.fromBrokerFramer.feed(chunk, out);
    } catch (err) {
      // A broken packet is refused at its start: what came before it is whole packets (and a boundary for
      // the answers waiting for one), so it goes on as it would had the broken packet come in a later read.
      out.push(...this.queuedAnswers);
      this.queuedAnswers = [];
      if (out.length > 0) this.io.toClient(out);
      this.failFromBroker(err);
      return;
    }
    if (this.fromBrokerFramer.atBoundary && this.queuedAnswers.length > 0) {
      out.push(...this.queuedAnswers);
      this.queuedAnswers = [];
    }
    if (out.length > 0) this.io.toClient(out);
  }

  /** The connection is over: timers go. */
  dispose(): void {
    this.ended = true;
    if (this.connectTimer) clearTimeout(this.connectTimer);
  }

  /** CONNECT accepted: the limits of an open session apply from here. */
  accepted(level: number): void {
    this.level = level;
    this.fromClientFramer.maxPacket = this.config.limits.max_packet;
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
  }

  /** Send the client an answer of the gateway's own, at a packet boundary of the broker's stream. */
  answer(packet: Buffer): void {
    if (this.fromBrokerFramer.atBoundary) {
      this.io.toClient([packet]);
      return;
    }
    if (this.queuedAnswers.length >= MAX_QUEUED_ANSWERS) {
      throw new MqttStreamError('mqtt_answer_backlog', 1008, RC5.quotaExceeded, 'too many refusals waiting for the broker stream');
    }
    this.queuedAnswers.push(packet);
  }

  /** End the connection for a client's error: a 5.0 DISCONNECT with the reason code where one is allowed, then the close. */
  fail(err: unknown): void {
    if (this.ended) return;
    const e = err instanceof MqttStreamError ? err : protocolError('mqtt_internal', String(err));
    this.dispose();
    // A DISCONNECT only once CONNECT set 5.0, and never in the middle of a broker packet.
    const lastWords = e.lastWords ?? (this.level === LEVEL_5 && this.fromBrokerFramer.atBoundary ? disconnect(e.reasonCode) : undefined);
    this.io.close(e.closeCode, { reason: e.reason, command: e.command, destination: e.destination, detail: e.message }, lastWords);
  }

  /** The broker broke the protocol: the client gets what the broker sent before, then 1014, nothing after it. */
  private failFromBroker(err: unknown): void {
    if (this.ended) return;
    this.dispose();
    // Not a typed refusal: a fault of the gateway's, not the broker's.
    const reason = err instanceof MqttStreamError ? `mqtt_backend_${err.reason.slice('mqtt_'.length)}` : 'mqtt_backend_internal';
    this.io.close(1014, { reason, detail: err instanceof Error ? err.message : String(err) }, undefined, true);
  }

  /** The head of a PUBLISH: topic, packet id and properties within the limits. */
  publishHeadCap(): number {
    const l = this.config.limits;
    return 2 + l.topic_length + 2 + 4 + l.properties_size;
  }
}

/** Client → broker: every packet checked before it may pass. */
class ClientPackets implements PacketOwner {
  constructor(private readonly s: MqttSession) {}

  want(type: number, _flags: number, remaining: number): number {
    if (!this.s.connected && type !== CONNECT) throw protocolError('mqtt_connect_expected', 'the first packet must be CONNECT');
    if (type === PUBLISH) return Math.min(remaining, this.s.publishHeadCap());
    if (type === CONNECT || type === SUBSCRIBE || type === UNSUBSCRIBE || type === AUTH || type === DISCONNECT) return remaining;
    return 0;
  }

  decide(type: number, flags: number, remaining: number, head: Buffer, fixedLength: number): Decision {
    const s = this.s;
    switch (type) {
      case CONNECT:
        return handleConnect(s, head, fixedLength);
      case PUBLISH:
        return handlePublish(s, flags, head, fixedLength);
      case SUBSCRIBE:
        return handleSubscribe(s, head, fixedLength);
      case UNSUBSCRIBE:
        return handleUnsubscribe(s, head, fixedLength);
      case DISCONNECT:
        return handleDisconnect(s, head, fixedLength);
      case CONNACK: case SUBACK: case UNSUBACK: case PINGRESP:
        throw protocolError('mqtt_wrong_direction', `packet type ${type} is sent by the broker only`);
      case AUTH:
        // CONNECT with an Authentication Method is refused, so no AUTH exchange can be under way.
        throw protocolError('mqtt_auth_packet', 'AUTH without enhanced authentication (the gateway authenticates)');
      default:
        void remaining;
        return PASS;
    }
  }
}

/** Broker → client: CONNACK and the SUBACKs the gateway completes are read; the rest streams through. */
class BrokerPackets implements PacketOwner {
  constructor(private readonly s: MqttSession) {}

  want(type: number, _flags: number, remaining: number): number {
    if ((type === CONNACK || type === SUBACK) && remaining > this.s.config.limits.max_connect_packet) {
      // Audited as mqtt_backend_packet_too_large: failFromBroker names the broker.
      throw tooLarge(`broker packet type ${type} of ${remaining} bytes over the limit of ${this.s.config.limits.max_connect_packet}`);
    }
    if (type === CONNACK) return remaining;
    if (type === SUBACK && this.s.pendingSubacks.size > 0) return remaining;
    return 0;
  }

  decide(type: number, _flags: number, _remaining: number, head: Buffer, fixedLength: number): Decision {
    if (type === CONNACK) return handleConnack(this.s, head, fixedLength);
    if (type === SUBACK && this.s.pendingSubacks.size > 0) return handleSuback(this.s, head, fixedLength);
    if (type === DISCONNECT) this.s.goodbye = true;
    return PASS;
  }
}

