/** Builds the Service for a service config, by type. */
import type { Logger } from 'pino';
import type { GatehouseConfig, ServiceConfig } from '../config/schema.js';
import type { Metrics } from '../observe/metrics.js';
import { EchoService } from './echo.js';
import type { Service } from './types.js';

export interface ServiceDeps {
  config: GatehouseConfig;
  log: Logger;
  metrics: Metrics;
}

export function createService(svc: ServiceConfig, _deps: ServiceDeps): Service {
  switch (svc.type) {
    case 'echo':
      return new EchoService(svc.name);
  }
}
