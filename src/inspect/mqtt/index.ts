/**
 * The MQTT inspector's factory: a connection of a service with
 * `inspect.mqtt` gets an MqttInspector under the service's policy.
 */
import type { Inspector, InspectorContext } from '../../relay/inspector.js';
import { MqttInspector } from './inspector.js';

export function mqttInspector(context: InspectorContext): Inspector | undefined {
  const service = context.admission.service;
  const config = service.type === 'tcp' || service.type === 'websocket' ? service.inspect?.mqtt : undefined;
  return config === undefined ? undefined : new MqttInspector(context, config);
}
