/**
 * The protocol inspectors, by the subprotocol that selects them
 * (INSPECTED_SUBPROTOCOLS in the config). The composition root hands this
 * table to the relayed services.
 */
import { INSPECTED_SUBPROTOCOLS } from '../config/inspect.js';
import type { InspectorFactory, InspectorTable } from '../relay/inspector.js';
import { stompInspector } from './stomp/index.js';
import { mqttInspector } from './mqtt/index.js';

const FACTORIES: Readonly<Record<string, InspectorFactory>> = {
  stomp: stompInspector,
  mqtt: mqttInspector,
};

export const PROTOCOL_INSPECTORS: InspectorTable = new Map(
  Object.entries(INSPECTED_SUBPROTOCOLS).flatMap(([name, protocols]) => protocols.map((p) => [p, FACTORIES[name]] as const)),
);
