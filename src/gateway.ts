/**
 * The composition root: builds everything from a validated config — logger,
 * metrics, audit, router, admission pipeline, services, front door — and owns
 * the lifecycle (start, reload, drain).
 */
import type { Logger } from 'pino';
import { AdmissionPipeline } from './admission/pipeline.js';
import { ChannelGuard } from './admission/channel-guard.js';
import { CHECK_FACTORIES, TICKET_DOOR_CHECKS } from './checks.js';
import type { GatehouseConfig } from './config/schema.js';
import { servicesOf } from './config/load.js';
import { FrontDoor, type BoundAddress, type FrontDoorContext } from './front/server.js';
import { TlsContexts } from './front/tls.js';
import { ConfigError, GatehouseError } from './errors.js';
import { Router } from './front/router.js';
import { Audit } from './observe/audit.js';
import { createLogger } from './observe/log.js';
import { Metrics } from './observe/metrics.js';
import { ConnectionEnds } from './observe/connection-end.js';
import { createService } from './services/index.js';
import { unwatchChannel, watchCredentials } from './auth/expiry.js';
import { backendIdentityHeaders } from './auth/identity.js';
import { ticketHttpHandler } from './auth/ticket-endpoint.js';
import { toAdmissionRequest } from './front/request.js';
import { FallbackEndpoints } from './front/fallback-endpoints.js';
import type { Service } from './services/types.js';
import type { SharedState } from './shared-state/contract.js';
import { MemorySharedState } from './shared-state/memory.js';

export interface GatewayOptions {
  logger?: Logger;
  metrics?: Metrics;
}

export class Gateway {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly audit: Audit;
  readonly front: FrontDoor;
  /** Per-connection rate limits and slow-consumer policing, installed on every admitted channel. */
  readonly guard: ChannelGuard;
  /** Failure counts, used and issued tickets: what guards security outlives every reload. */
  private readonly sharedState: SharedState = new MemorySharedState();
  private config: GatehouseConfig;
  /** The rate and connection checks ticket requests pass, built with each configuration (as the pipeline is). */
  private ticketDoor!: AdmissionPipeline;
  private stopping?: Promise<void>;
  /** Services replaced by a reload: they keep the sessions they opened and are shut down with the rest. */
  private readonly retired = new Set<Service>();

  private constructor(config: GatehouseConfig, opts: GatewayOptions) {
    this.config = config;
    this.log = opts.logger ?? createLogger(config.log.level);
    this.metrics = opts.metrics ?? new Metrics();
    this.audit = new Audit(this.log, this.metrics, config.log.bad_input_per_second);
    this.front = new FrontDoor(this.buildContext(config));
    this.guard = new ChannelGuard({ limits: config.limits, audit: this.audit, metrics: this.metrics });
    this.front.addChannelHook(this.guard.hook, this.guard.unhook);
    // The access-log line and close counter of every ended connection (after the guard's own end hook).
    this.front.addEndHook(new ConnectionEnds(this.log, this.metrics, ChannelGuard.trafficOf).ended);
    // Authentication: the ticket-issuing endpoint, and connections closed when their credential expires.
    this.front.addHttpHandler(ticketHttpHandler(toAdmissionRequest, (request, service) => this.ticketDoor.admit(request, service)));
    this.front.addChannelHook((channel, admission, ctx) => { watchCredentials(channel, admission, { audit: ctx.audit }); }, unwatchChannel);
    // The HTTP fallback (issue 6): same URLs, same admission; its sessions are tracked channels.
    this.front.addHttpHandler(new FallbackEndpoints({
      track: (ch, a) => this.front.track(ch, a),
      untrack: (ch, info) => this.front.untrack(ch, info),
      draining: () => this.front.drainingRefusal(),
      opening: (work) => this.front.trackOpening(work),
    }).handle);
  }

  static async start(config: GatehouseConfig, opts: GatewayOptions = {}): Promise<Gateway> {
    const gw = new Gateway(config, opts);
    await gw.front.listen();
    return gw;
  }

  /**
   * Everything `start` (and a reload) builds from a config, without binding a
   * port: the services, the admission checks with the files they read (users
   * files, JWT key files, identity signing keys, backend TLS material) and each
   * TLS listener's certificates. Throws one ConfigError listing each problem
   * found (the services stop at their first; every TLS listener is tried).
   * `gatehouse check` runs it, so a config that passes the check also starts.
   */
  static validate(config: GatehouseConfig): void {
    const problems: string[] = [];
    const attempt = (where: string, build: () => void): void => {
      try {
        build();
      } catch (err) {
        if (!(err instanceof GatehouseError)) throw err;
        const issues = err instanceof ConfigError && err.issues.length > 0 ? err.issues : [err.message];
        problems.push(...issues.map((i) => `${where}: ${i}`));
      }
    };
    attempt('services', () => { void new Gateway(config, { logger: createLogger('silent') }); });
    config.listen.forEach((listener, i) => {
      const tls = listener.tls;
      if (tls) attempt(`listen.${i}.tls`, () => { void new TlsContexts(tls); });
    });
    if (problems.length > 0) throw new ConfigError('the configuration names files that cannot be used', problems);
  }

  get addresses(): BoundAddress[] { return this.front.addresses; }
  get currentConfig(): GatehouseConfig { return this.config; }

  private buildContext(config: GatehouseConfig): FrontDoorContext {
    const services = new Map<string, Service>();
    const list = servicesOf(config);
    for (const svc of list) services.set(svc.name, createService(svc, { config, log: this.log, metrics: this.metrics, audit: this.audit, identityHeaders: backendIdentityHeaders }));
    const env = { config, log: this.log, metrics: this.metrics, shared: this.sharedState };
    this.ticketDoor = new AdmissionPipeline(list, TICKET_DOOR_CHECKS, env, this.audit);
    return {
      config,
      router: new Router(list),
      pipeline: new AdmissionPipeline(list, CHECK_FACTORIES, env, this.audit),
      services,
      audit: this.audit,
      log: this.log,
      metrics: this.metrics,
    };
  }

  /**
   * Apply a new config, all or nothing: services, policy and limits for new
   * connections (open ones keep what they were admitted with), and the
   * listeners — opened, closed, their certificates and settings swapped
   * (src/front/listener-reload.ts). Rejects with a ConfigError naming each
   * problem (a file that cannot be used, a port that cannot be bound, a change
   * that needs a restart); the running configuration then stays as it was.
   */
  async reload(config: GatehouseConfig): Promise<void> {
    const ctx = this.buildContext(config);
    const listeners = await this.front.reloadListeners(config);
    // A retired service is kept only while sessions it opened are live (it shuts them down on stop).
    for (const s of this.retired) if ((s.liveConnections ?? 0) === 0) this.retired.delete(s);
    for (const s of this.front.context.services.values()) if ((s.liveConnections ?? 0) > 0) this.retired.add(s);
    this.front.setContext(ctx);
    this.guard.setLimits(config.limits);
    this.config = config;
    this.log.info({
      services: Object.keys(config.services),
      listeners_opened: listeners.opened.map((a) => `${a.address}:${a.port}`),
      listeners_closed: listeners.closed.map((a) => `${a.host}:${a.port}`),
    }, 'configuration reloaded');
  }

  /** Services replaced by reloads that still have live sessions. */
  get retiredServices(): number { return this.retired.size; }

  /** Drain: stop accepting, close channels with 1001, shut services down. */
  stop(timeoutMs = this.config.shutdown.drain_timeout): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ open: this.front.openChannels, timeoutMs }, 'draining');
      await this.front.drain(timeoutMs);
      this.guard.stop();
      const services = [...this.retired, ...this.front.context.services.values()];
      await Promise.all(services.map((s) => s.shutdown?.().catch((err) => {
        this.log.warn({ err, service: s.name }, 'service shutdown failed');
      })));
      this.log.info('stopped');
    })();
    return this.stopping;
  }
}
