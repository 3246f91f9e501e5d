/**
 * What a service's config gives each of its WebSocket connections: message
 * limits from the service, timers and the high-water mark from the root
 * `websocket:` section. One mapping for client-facing and backend connections.
 */
import type { ServiceConfig, WebSocketSettings } from '../config/schema.js';
import type { ConnectionOptions } from './connection.js';

export type ConnectionSettings = Pick<ConnectionOptions,
  'maxMessage' | 'maxFrame' | 'maxFragments' | 'messageTimeout' | 'pingInterval' | 'pongTimeout' | 'idleTimeout' | 'closeTimeout' | 'highWaterMark'>;

export function connectionSettings(
  svc: Pick<ServiceConfig, 'max_message' | 'max_frame' | 'max_fragments' | 'message_timeout'>,
  ws: WebSocketSettings,
): ConnectionSettings {
  return {
    maxMessage: svc.max_message,
    maxFrame: svc.max_frame ?? svc.max_message,
    maxFragments: svc.max_fragments,
    messageTimeout: svc.message_timeout,
    pingInterval: ws.ping_interval,
    pongTimeout: ws.pong_timeout,
    idleTimeout: ws.idle_timeout,
    closeTimeout: ws.close_timeout,
    highWaterMark: ws.high_water_mark,
  };
}
