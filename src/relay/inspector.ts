/**
 * The inspector contract. Inspectors (STOMP, MQTT, ...) plug in by negotiated
 * subprotocol through `registerInspector`; with none registered the relay is
 * a passthrough. A service may add its own (the tcp service's text policy is one).
 */
import type { Admission } from '../admitted.js';

export type Direction = 'to_backend' | 'to_client';

/** What an inspector answers when traffic breaks its rules: the close code for the client and a stable reason. */
export interface Violation {
  code: number;
  /** Stable reason code for the audit trail and the close frame, e.g. `text_not_allowed`. */
  reason: string;
}

/**
 * Looks at each piece of each message as it passes. Returning a Violation
 * ends the connection: the client gets `code`, the backend is closed.
 */
export interface Inspector {
  readonly name: string;
  inspect(direction: Direction, data: Buffer, isBinary: boolean, first: boolean, fin: boolean): Violation | undefined;
}

export type InspectorFactory = (admission: Admission) => Inspector;

const inspectorsByProtocol = new Map<string, InspectorFactory>();

/** Plug an inspector in for a negotiated subprotocol (called once at start-up by the inspector's module). */
export function registerInspector(protocol: string, factory: InspectorFactory): void {
  inspectorsByProtocol.set(protocol, factory);
}

/** Shared by every passthrough relay: no array per connection. */
export const NO_INSPECTORS: readonly Inspector[] = Object.freeze([]);

/** The inspectors for a connection, chosen by its negotiated subprotocol; none → passthrough. */
export function inspectorsFor(admission: Admission, protocol: string): readonly Inspector[] {
  const factory = protocol === '' ? undefined : inspectorsByProtocol.get(protocol);
  return factory ? [factory(admission)] : NO_INSPECTORS;
}
