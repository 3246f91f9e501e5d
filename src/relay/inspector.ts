/**
 * The inspector contract: how a protocol inspector (STOMP, MQTT, ...) sits in
 * a relay, between the client and the backend.
 *
 * Choice. The relay holds a table from negotiated subprotocol to factory
 * (`InspectorTable`, built by the composition root from src/inspect/). At
 * start the factory for the connection's subprotocol is asked for an
 * inspector; it answers undefined when the service has no policy for that
 * protocol. Without a protocol inspector a service's own (the tcp service's
 * text policy) is used; without either the relay is a plain passthrough and
 * its fast paths (the raw masked frame path included) are untouched.
 * One inspector per connection: it owns both directions.
 *
 * Traffic. Every piece of every message, both ways, goes to the inspector
 * instead of the other side: `fromClient` / `fromBackend`, with the same
 * arguments as a streaming `ChannelSink` (unmasked; text already UTF-8
 * checked; `first` starts a message, `fin` ends it). Nothing is assembled
 * for it: a protocol that frames its own units over the byte stream parses
 * the pieces as they come, holding at most one unit of its own (bounded by
 * its limits). Its verdicts go through `InspectorActions`:
 *
 * - pass or rewrite: `sendToBackend` / `sendToClient` a whole message (the
 *   bytes as received, or new ones), or `pieceToBackend` / `pieceToClient`
 *   to stream a message piece by piece (pieces of one message must not
 *   interleave with other sends toward the same side);
 * - answer the client in its own protocol without the backend: `sendToClient`;
 * - record a request refused in-protocol while the connection stays:
 *   `refused` (audit line and counter);
 * - end the connection: `end(violation)` — the client is closed with the
 *   violation's code and stable reason after whatever was sent to it before
 *   (an ERROR frame, say), the backend is closed, and the violation is
 *   audited and counted. `direction` says whose traffic broke the rules:
 *   `to_backend` the client's, `to_client` the backend's (close 1014 or 1011).
 *
 * Buffers handed to the actions are the relay's from then on: the inspector
 * must not write to them again (a tcp backend's socket may still hold them).
 * Sends never fail; when a side is full the relay stops reading the other
 * side until it drains, so an inspector holds at most what one read brought.
 *
 * The backend's end. A backend that closes as if all were well (a byte
 * stream's FIN, a WebSocket close 1000 or without a code) is asked about
 * first: `backendEnded()` says whether the protocol expected that end (the
 * client said goodbye, or the broker explained itself in the protocol) or
 * returns the violation the client gets instead (1014, audited as the
 * backend's, `to_client`). Without the method such an end reaches the client
 * as 1000.
 *
 * Lifetime. `end()` is called once when the relay stops relaying (either side
 * closed, a violation, the gateway draining): release timers there. After it
 * no more traffic arrives, and actions do nothing.
 */
import type { Admission } from '../admitted.js';

export type Direction = 'to_backend' | 'to_client';

/** A refusal for the audit trail: a stable reason code and what it concerned. Never payload. */
export interface Refusal {
  /** Stable reason code, e.g. `stomp_send_denied`. Also the close frame's reason when it ends the connection. */
  reason: string;
  /** The protocol command or packet type refused (a label of the refusal counter: a fixed set). */
  command?: string;
  /** The destination or topic concerned (audit line only, never a metric label). */
  destination?: string;
  /** A short explanation for the audit line. */
  detail?: string;
}

/** A refusal that ends the connection: the close code the client gets. */
export interface Violation extends Refusal {
  code: number;
}

/** What an inspector does with traffic. The relay implements it. */
export interface InspectorActions {
  sendToBackend(data: Buffer, isBinary: boolean): void;
  sendToClient(data: Buffer, isBinary: boolean): void;
  pieceToBackend(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void;
  pieceToClient(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void;
  /** A request refused in-protocol; the connection stays. */
  refused(refusal: Refusal, direction?: Direction): void;
  /** End the connection (client closed with `violation.code`, backend closed, audited). */
  end(violation: Violation, direction?: Direction): void;
}

export interface Inspector {
  /** Names the inspector in logs and metrics, e.g. `stomp`. */
  readonly name: string;
  fromClient(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void;
  fromBackend(data: Buffer, isBinary: boolean, first: boolean, fin: boolean): void;
  /** The backend closed normally: undefined when the protocol expected it, else the violation the client's close gets. */
  backendEnded?(): Violation | undefined;
  /** The relay stopped: release timers and buffers. */
  end(): void;
}

export interface InspectorContext {
  readonly admission: Admission;
  readonly actions: InspectorActions;
  /**
   * The backend is a byte stream (a `tcp` service): its messages are
   * arbitrary slices of the stream (always binary), and message boundaries
   * and types toward it mean nothing. Else a WebSocket backend, whose
   * messages are its own.
   */
  readonly backendStream: boolean;
}

/** Builds the inspector of one connection, or undefined when the service has no policy for this protocol. */
export type InspectorFactory = (context: InspectorContext) => Inspector | undefined;

/** Negotiated subprotocol → factory. */
export type InspectorTable = ReadonlyMap<string, InspectorFactory>;

/** No protocol inspectors: every relay is a passthrough (or runs its service's own inspector). */
export const NO_INSPECTORS: InspectorTable = new Map();
