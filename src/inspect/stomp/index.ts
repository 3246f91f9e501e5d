/**
 * The STOMP inspector's factory: a connection of a service with
 * `inspect.stomp` gets a StompInspector under the service's compiled policy.
 */
import type { Inspector, InspectorContext } from '../../relay/inspector.js';
import { StompInspector } from './inspector.js';
import { stompPolicy } from './policy.js';

export function stompInspector(context: InspectorContext): Inspector | undefined {
  const service = context.admission.service;
  const config = service.type === 'tcp' || service.type === 'websocket' ? service.inspect?.stomp : undefined;
  if (config === undefined) return undefined;
  return new StompInspector(context, stompPolicy(config, service.max_message));
}
