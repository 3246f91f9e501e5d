/**
 * The composition root: builds everything from a validated config — logger,
 * metrics, audit, router, admission pipeline, services, front door — and owns
 * the lifecycle (start, reload, drain).
 */
import type { Logger } from 'pino';
import { AdmissionPipeline } from './admission/pipeline.js';
import { ChannelGuard } from './admission/channel-guard.js';
import { CHECK_FACTORIES, credentialChecks, TICKET_DOOR_CHECKS } from './checks.js';
import type { GatehouseConfig } from './config/schema.js';
import { orNoLimit } from './config/limits.js';
import { servicesOf } from './config/load.js';
import { FrontDoor, type BoundAddress, type FrontDoorContext } from './front/server.js';
import { TlsContexts } from './front/tls.js';
import { ConfigError, GatehouseError } from './errors.js';
import { Router } from './front/router.js';
import { Audit } from './observe/audit.js';
import { createLogger } from './observe/log.js';
import { Metrics } from './observe/metrics.js';
import { ConnectionEnds } from './observe/connection-end.js';
import { AdminServer } from './admin/server.js';
import type { AdminHooks, ReloadResult } from './admin/api.js';
import type { PublishResult } from './admin/publish.js';
import { busChannel, messageText } from './services/pubsub.js';
import { CHANNEL } from './services/pubsub-protocol.js';
import { createService } from './services/index.js';
import { PROTOCOL_INSPECTORS } from './inspect/index.js';
import { unwatchChannel, watchCredentials } from './auth/expiry.js';
import { backendIdentityHeaders } from './auth/identity.js';
import { ticketHttpHandler } from './auth/ticket-endpoint.js';
import { toAdmissionRequest } from './front/request.js';
import { FallbackEndpoints, type FallbackOptions } from './front/fallback-endpoints.js';
import type { Service } from './services/types.js';
import { setZlibConcurrency } from './websocket/zlib-pool.js';
import { registerCompressionMetrics } from './websocket/deflate-metrics.js';
import type { SharedState } from './shared-state/contract.js';
import { LocalBus, type MessageBus } from './bus.js';
import { MemorySharedState } from './shared-state/memory.js';

export interface GatewayOptions {
  logger?: Logger;
  metrics?: Metrics;
  /** Where a reload reads the configuration from (the CLI's `--config` file); none: reload is refused. */
  configSource?: () => GatehouseConfig;
  /** State shared with the other processes of a cluster (their primary's, or Redis); default: this process's own. */
  shared?: SharedState;
  /** The pub/sub bus shared with the other processes of a cluster; default: this process's own. */
  bus?: MessageBus;
  /** Fallback sessions of a cluster: this process's id, and the hop to a session's owner (FallbackEndpoints `route`). */
  fallbackRoute?: FallbackOptions['route'];
}

export class Gateway {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly audit: Audit;
  readonly front: FrontDoor;
  /** Per-connection rate limits and slow-consumer policing, installed on every admitted channel. */
  readonly guard: ChannelGuard;
  /** The HTTP fallback's endpoints: its sessions, and its requests not yet bound to a connection slot. */
  readonly fallback: FallbackEndpoints;
  /** Failure counts, used and issued tickets: what guards security outlives every reload. */
  private readonly sharedState: SharedState;
  /** Where `pubsub` services publish and subscribe; one for the gateway's life, so reloaded services share it. */
  readonly bus: MessageBus;
  private config: GatehouseConfig;
  /** The rate and connection checks ticket requests pass, built with each configuration (as the pipeline is). */
  private ticketDoor!: AdmissionPipeline;
  private stopping?: Promise<void>;
  /** Services replaced by a reload: they keep the sessions they opened and are shut down with the rest. */
  private readonly retired = new Set<Service>();
  private readonly configSource?: () => GatehouseConfig;
  /** The admin listener, when `admin:` is configured. */
  readonly admin?: AdminServer;
  private stoppedResolve!: () => void;
  /** Settles when `stop` has finished (a signal or the admin API's drain). */
  readonly stopped = new Promise<void>((resolve) => { this.stoppedResolve = resolve; });

  private constructor(config: GatehouseConfig, opts: GatewayOptions) {
    this.config = config;
    this.configSource = opts.configSource;
    this.sharedState = opts.shared ?? new MemorySharedState();
    this.bus = opts.bus ?? new LocalBus();
    this.log = opts.logger ?? createLogger(config.log.level);
    this.metrics = opts.metrics ?? new Metrics();
    this.audit = new Audit(this.log, this.metrics, orNoLimit(config.log.bad_input_per_second));
    registerCompressionMetrics(this.metrics);
    this.front = new FrontDoor(this.buildContext(config));
    this.guard = new ChannelGuard({ limits: config.limits, audit: this.audit, metrics: this.metrics });
    this.front.addChannelHook(this.guard.hook, this.guard.unhook);
    // The access-log line and close counter of every ended connection (after the guard's own end hook).
    this.front.addEndHook(new ConnectionEnds(this.log, this.metrics, ChannelGuard.trafficOf).ended);
    // Authentication: the ticket-issuing endpoint, and connections closed when their credential expires.
    this.front.addHttpHandler(ticketHttpHandler(toAdmissionRequest, (request, service) => this.ticketDoor.admit(request, service)));
    this.front.addChannelHook((channel, admission, ctx) => { watchCredentials(channel, admission, { audit: ctx.audit }); }, unwatchChannel);
    // The HTTP fallback (issue 6): same URLs, same admission; its sessions are tracked channels.
    this.fallback = new FallbackEndpoints({
      track: (ch, a) => this.front.track(ch, a),
      untrack: (ch, info) => this.front.untrack(ch, info),
      draining: () => this.front.drainingRefusal(),
      opening: (work) => this.front.trackOpening(work),
      route: opts.fallbackRoute,
    });
    this.front.addHttpHandler(this.fallback.handle);
    if (config.admin) this.admin = new AdminServer(config.admin, this.adminHooks(), this.audit);
  }

  /** What the admin listener reads and acts on. */
  private adminHooks(): AdminHooks {
    return {
      metrics: this.metrics,
      log: this.log,
      channels: () => this.front.channelSet,
      traffic: ChannelGuard.trafficOf,
      readiness: () => (this.front.isDraining || this.stopping ? { ready: false, reason: 'draining' }
        : this.front.addresses.length === 0 ? { ready: false, reason: 'not listening' } : { ready: true }),
      reload: () => this.reloadFromSource(),
      drain: () => { void this.stop(); },
      publish: (service, channel, data) => this.publish(service, channel, data),
    };
  }

  static async start(config: GatehouseConfig, opts: GatewayOptions = {}): Promise<Gateway> {
    const gw = new Gateway(config, opts);
    await gw.front.listen();
    if (gw.admin) {
      try {
        const a = await gw.admin.listen();
        gw.log.info({ host: a.host, port: a.port }, 'admin listening');
      } catch (err) {
        await gw.stop(0);
        throw new ConfigError(`admin listener ${config.admin?.host}:${config.admin?.port}: ${(err as Error).message}`, [], { cause: err });
      }
    }
    gw.metrics.ready.inc(undefined, 1);
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
    // One zlib queue for the process (the thread pool it protects is one): a reload sets its width.
    setZlibConcurrency(config.websocket.compression_concurrency);
    const services = new Map<string, Service>();
    const list = servicesOf(config);
    for (const svc of list) services.set(svc.name, createService(svc, { config, log: this.log, metrics: this.metrics, audit: this.audit, identityHeaders: backendIdentityHeaders, inspectors: PROTOCOL_INSPECTORS, bus: this.bus }));
    const env = { config, log: this.log, metrics: this.metrics, shared: this.sharedState };
    this.ticketDoor = new AdmissionPipeline(list, TICKET_DOOR_CHECKS, env, this.audit);
    return {
      config,
      router: new Router(list),
      pipeline: new AdmissionPipeline(list, CHECK_FACTORIES, env, this.audit),
      credentials: new AdmissionPipeline(list, credentialChecks(), env, this.audit),
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

  /**
   * Reload from the configuration source (SIGHUP, the admin API). An invalid
   * configuration is refused with its issues; the running one stays.
   */
  async reloadFromSource(): Promise<ReloadResult> {
    if (!this.configSource) return { ok: false, status: 409, error: 'running on the built-in configuration: nothing to reload', issues: [] };
    try {
      const config = this.configSource();
      await this.reload(config);
      return { ok: true, services: Object.keys(config.services) };
    } catch (err) {
      const issues = err instanceof ConfigError ? err.issues : [];
      this.log.error({ issues, err: err instanceof ConfigError ? undefined : err }, 'reload refused: the running configuration stays');
      return err instanceof ConfigError
        ? { ok: false, status: 422, error: err.message, issues }
        : { ok: false, status: 500, error: 'reload failed', issues };
    }
  }


  /** A message for a `pubsub` service's channel (the admin API's publish), to its subscribers everywhere. */
  async publish(service: string, channel: string, data: unknown): Promise<PublishResult> {
    const svc = this.config.services[service];
    if (svc?.type !== 'pubsub') return 'unknown_service';
    if (!CHANNEL.test(channel)) return 'bad_channel';
    try {
      await this.bus.publish(busChannel(service, channel), messageText(channel, data));
      this.metrics.inc('gatehouse_pubsub_messages_total', { service, direction: 'published' });
      return 'ok';
    } catch {
      return 'unavailable';
    }
  }

  /** Drain: stop accepting, close channels with 1001, shut services down. */
  stop(timeoutMs = this.config.shutdown.drain_timeout): Promise<void> {
    this.stopping ??= (async () => {
      this.metrics.ready.series().value = 0;
      this.log.info({ open: this.front.openChannels, timeoutMs }, 'draining');
      await this.front.drain(timeoutMs);
      this.guard.stop();
      const services = [...this.retired, ...this.front.context.services.values()];
      await Promise.all(services.map((s) => s.shutdown?.().catch((err) => {
        this.log.warn({ err, service: s.name }, 'service shutdown failed');
      })));
      await this.admin?.close();
      this.log.info('stopped');
      this.stoppedResolve();
    })();
    return this.stopping;
  }
}
