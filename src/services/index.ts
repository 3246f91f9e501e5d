/** Builds the Service for a service config, by type. */
import type { Logger } from 'pino';
import type { GatehouseConfig, ServiceConfig } from '../config/schema.js';
import type { Audit } from '../observe/audit.js';
import type { Metrics } from '../observe/metrics.js';
import { EchoService } from './echo.js';
import { TcpService } from './tcp.js';
import { WebSocketService, type WebSocketServiceDeps } from './websocket.js';
import type { Service } from './types.js';
import type { InspectorTable } from '../relay/inspector.js';
import { PubSubService } from './pubsub.js';
import type { MessageBus } from '../bus.js';

export interface ServiceDeps {
  config: GatehouseConfig;
  log: Logger;
  metrics: Metrics;
  audit: Audit;
  /** Who the client is, as headers for a backend request (the auth layer's, passed in by the composition root). */
  identityHeaders?: WebSocketServiceDeps['identityHeaders'];
  /** Protocol inspectors by subprotocol (the composition root's table from src/inspect/). */
  inspectors?: InspectorTable;
  /** Where `pubsub` services publish and subscribe: the gateway's one bus (kept across reloads), shared by a cluster. */
  bus: MessageBus;
}

export function createService(svc: ServiceConfig, deps: ServiceDeps): Service {
  switch (svc.type) {
    case 'echo':
      return new EchoService(svc.name);
    case 'tcp':
      return new TcpService(svc, { ...deps, sendStallTimeout: deps.config.limits.send_stall_timeout });
    case 'websocket':
      return new WebSocketService(svc, { ...deps, websocket: deps.config.websocket, sendStallTimeout: deps.config.limits.send_stall_timeout });
    case 'pubsub':
      return new PubSubService(svc, { bus: deps.bus, audit: deps.audit, metrics: deps.metrics });
  }
}
