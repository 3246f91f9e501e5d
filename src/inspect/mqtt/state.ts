/**
 * What the per-packet rules (connect, publish, subscribe, broker) see of one
 * connection's MQTT session: its policy and state, and the two things they
 * may ask of it. MqttSession implements it and calls the rules; the rules
 * take this interface rather than the class, so they never import the
 * session that calls them.
 */
import type { MqttInspectConfig } from '../../config/inspect-mqtt.js';
import type { PlaceholderIdentity } from '../placeholders.js';
import type { PropertyLimits } from './properties.js';
import type { Filter } from './topics.js';

/** A refusal for the audit trail: stable reason, the packet type, the topic or filter concerned. */
export interface MqttRefusal {
  reason: string;
  command?: string;
  destination?: string;
  detail?: string;
}

export interface MqttIO {
  /** Bytes for the broker, in order. */
  toBackend(pieces: Buffer[]): void;
  /** Bytes for the client, in order, at a packet boundary of the broker's stream. */
  toClient(pieces: Buffer[]): void;
  /** A request refused in-protocol (the connection stays): audit line and counter. */
  refused(refusal: MqttRefusal): void;
  /**
   * End the connection: the client gets `code`, after `lastWords` (an MQTT
   * DISCONNECT or CONNACK) when given. `fromBroker`: the broker broke the rules.
   */
  close(code: number, refusal: MqttRefusal, lastWords?: Buffer, fromBroker?: boolean): void;
}

/** What the gateway still has to add to a SUBACK the broker will send. */
export interface PendingSuback {
  /** Reason codes by position in the client's SUBSCRIBE; undefined where the broker answers. */
  codes: (number | undefined)[];
  forwarded: number;
}

/** Most SUBSCRIBEs waiting for a SUBACK the gateway must complete. */
export const MAX_PENDING_SUBACKS = 256;

export interface MqttSessionState {
  readonly config: MqttInspectConfig;
  readonly principal: PlaceholderIdentity | undefined;
  readonly io: MqttIO;
  /** Property limits of the configuration (count and bytes per block). */
  readonly properties: PropertyLimits;
  /** Protocol level after CONNECT (4 or 5), 0 before. */
  readonly level: number;
  readonly connected: boolean;
  publishFilters: Filter[];
  subscribeFilters: Filter[];
  /** Share groups the principal may join (`$share/{group}/...`). */
  shareGroups: ReadonlySet<string>;
  /** MQTT 5.0 topic aliases the client set: alias → topic levels (refused topics included, so their aliases stay refused). */
  readonly aliases: Map<number, string[]>;
  /** Topic Alias Maximum the client was told (the broker's CONNACK value lowered to the limit); 0 until CONNACK. */
  aliasMaximum: number;
  /** Filters the connection holds. */
  readonly subscriptions: Set<string>;
  readonly pendingSubacks: Map<number, PendingSuback>;
  /** The topic (bytes) of the last PUBLISH allowed by name: a repeated topic skips the policy walk. */
  lastAllowed?: Buffer;
  /** MQTT 5.0: the CONNECT set a Session Expiry Interval other than 0 (the session may outlive the connection). */
  sessionExpires: boolean;
  /** The client sent DISCONNECT, or the broker a DISCONNECT or a refusing CONNACK: the broker may close now. */
  goodbye: boolean;
  /** CONNECT accepted at this level: the limits of an open session apply from here. */
  accepted(level: number): void;
  /** Send the client an answer of the gateway's own, at a packet boundary of the broker's stream. */
  answer(packet: Buffer): void;
}
