/**
 * PlatformServices: everything the server does with controllers, wired together and tied to the
 * server's lifecycle.
 *
 *   etcd client ─► ControllerDiscovery ─┬─► ControllerTracker (controllers_history)
 *                                       ├─► ControllerClientPool (each area's own token)
 *                                       └─► FleetView refresh triggers
 *   FleetView (aggregated agents + devices, AgentIndex)   BatchRunner (batch jobs)
 *
 * start() never waits for etcd: discovery keeps retrying in the background (the server serves
 * devices, users and the rest meanwhile, and the agent view says discovery is not synced).
 * stop() aborts running batches (recording them), stops the refresh, discovery, the pools and
 * the etcd client.
 */
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import {
  AgentNotFoundError,
  ControllerUnavailableError,
  OpsplaneError,
  PackageNotFoundError,
  RequestTimeoutError,
  type Controller,
} from '@opsplane/models';
import {
  ControllerClientPool,
  ControllerDiscovery,
  ControllerHttpError,
  controllerClientOptions,
  createEtcdClient,
  etcdClientOptions,
  type ControllerClient,
  type Logger,
  type PooledController,
} from '@opsplane/platform';
import { Gauge, type Registry } from 'prom-client';
import type { ServerConfig } from '../config.js';
import type { Store } from '../storage/store.js';
import type { DeviceRow } from '../storage/schema.js';
import { AreaCredentials } from './area-credentials.js';
import { BatchReconciler } from './batch-reconciler.js';
import { BatchRunner } from './batch-runner.js';
import { ControllerTracker } from './controller-tracker.js';
import type { DiscoveryState } from '@opsplane/api';
import { FleetView } from './fleet-view.js';
import { caBundleOf } from './pki.js';

export interface PlatformServicesOptions {
  config: ServerConfig;
  store: Store;
  logger: Logger;
  registry?: Registry;
  /** Tests: an etcd client to use instead of creating one (then not closed by stop()). */
  etcd?: Etcd3;
  /** This replica's name: owner of the batches it runs. */
  replicaId?: string;
  /** An embedded database: no other replica exists, so every batch left running is ours to reconcile. */
  exclusiveDatabase?: boolean;
}

/** Where an agent lives: its area (from its device, or the view) and the device, if any. */
export interface AgentLocation {
  code: string;
  area: string;
  device: DeviceRow | undefined;
}

/**
 * Turns an error from a controller into what the platform API should answer. A controller's
 * 401/403 means the platform's credentials for the area are wrong — not the caller's — so it
 * becomes a 502 that says so (a 401 would make clients think their own login expired).
 */
export function upstreamError(err: unknown, area: string, controller?: string): OpsplaneError {
  const who = controller ? `controller '${controller}'` : `the controllers of area '${area}'`;
  if (err instanceof ControllerHttpError) {
    if (err.upstreamStatus === 401 || err.upstreamStatus === 403) {
      return new OpsplaneError(
        'upstream_error',
        `${who} rejected the platform's credentials (HTTP ${err.upstreamStatus}); set the area's controller_token (PUT /api/v1/areas/${area}/credentials)`,
        { status: 502 },
      );
    }
    if (err.upstreamStatus >= 400 && err.upstreamStatus < 500 && err.upstreamStatus !== 404) {
      return new OpsplaneError('upstream_error', `${who} refused the request: ${err.message}`, {
        status: 502,
      });
    }
    return new OpsplaneError(err.code === 'upstream_error' ? 'upstream_error' : err.code, err.message, {
      status: err.status >= 500 ? err.status : 502,
    });
  }
  if (err instanceof OpsplaneError) return err;
  return new OpsplaneError('upstream_error', `${who}: ${err instanceof Error ? err.message : String(err)}`, {
    status: 502,
  });
}

export class PlatformServices {
  readonly credentials: AreaCredentials;
  readonly discovery: ControllerDiscovery;
  readonly pools: ControllerClientPool;
  readonly tracker: ControllerTracker;
  readonly view: FleetView;
  readonly batches: BatchRunner;
  /** Learns the true results of batches a stopped server left running (from the agents' journals). */
  readonly reconciler: BatchReconciler;
  /** The etcd client (discovery; the cluster leadership campaigns on it too). */
  readonly etcd: Etcd3;
  private readonly ownsEtcd: boolean;
  private readonly log: Logger;
  private synced = false;
  private lastDiscoveryError: string | null = null;
  private stopping: Promise<void> | undefined;

  constructor(private readonly opts: PlatformServicesOptions) {
    const { config, store } = opts;
    this.log = opts.logger.child({ component: 'platform' });
    this.credentials = new AreaCredentials(store, config, this.log);
    this.ownsEtcd = opts.etcd === undefined;
    this.etcd = opts.etcd ?? createEtcdClient(etcdClientOptions(config));
    this.discovery = new ControllerDiscovery(this.etcd, config.etcd.watch_prefix, {
      // The server must come up without etcd: discovery retries for as long as it takes.
      startTimeoutMs: 0,
      logger: this.log.child({ component: 'discovery' }),
    });
    const { apiToken: _globalToken, ...clientOptions } = controllerClientOptions(config);
    // Controllers with certificates of the built-in CA: trust its bundle unless told otherwise.
    if (!clientOptions.tls && config.server.pki) {
      const bundle = caBundleOf(config.server.pki.ca_dir);
      if (bundle) clientOptions.tls = { ca: bundle };
    }
    // Areas are separate trust domains: each area's controllers get that area's token only.
    this.pools = new ControllerClientPool(this.discovery, {
      clientOptions,
      apiTokenFor: (area) => this.credentials.controllerToken(area),
      logger: this.log.child({ component: 'controller-pool' }),
    });
    this.view = new FleetView({
      pools: this.pools,
      store,
      discovery: () => this.discoveryState(),
      extraAreas: () => this.credentials.areas(),
      refreshIntervalMs: config.server.agents_refresh_interval,
      ttlMs: config.cache.agent_ttl,
      maxWorkers: config.concurrency.max_workers,
      logger: this.log.child({ component: 'agent-view' }),
    });
    this.tracker = new ControllerTracker(this.log.child({ component: 'controller-history' }), (change) => {
      // Heartbeat rewrites change nothing the view shows; the rest may.
      if (change !== 'heartbeat' && this.synced) this.view.trigger(`controller ${change}`);
    });
    // Batches are owned by this process, not just its replica name: a replica restarted under the
    // same replica_id must not renew — and so strand — the leases of batches its previous run held.
    const batchOwner = `${opts.replicaId ?? 'server'}:${randomBytes(4).toString('hex')}`;
    this.batches = new BatchRunner({
      store,
      pools: this.pools,
      view: this.view,
      maxWorkers: config.concurrency.max_workers,
      defaultTimeoutMs: config.server.batch_timeout,
      callTimeoutMs: config.controller.api_timeout,
      failoverWaitMs: config.server.batch_failover_wait,
      replicaId: batchOwner,
      leaseMs: config.server.batch_lease_ttl,
      logger: this.log.child({ component: 'batch' }),
    });
    this.reconciler = new BatchReconciler({
      store,
      pools: this.pools,
      runner: this.batches,
      synced: () => this.synced,
      waitMs: config.server.batch_reconcile_wait,
      replicaId: batchOwner,
      leaseMs: config.server.batch_lease_ttl,
      exclusiveDatabase: opts.exclusiveDatabase ?? false,
      logger: this.log.child({ component: 'batch-reconciler' }),
    });
    this.discovery.onControllerUpdate((c) => this.tracker.update(c));
    this.discovery.onControllerDelete((key) => this.tracker.delete(key));
    this.discovery.on('error', (err) => {
      this.lastDiscoveryError = err.message;
    });
    this.discovery.on('resync', () => {
      this.lastDiscoveryError = null;
      if (!this.synced) {
        this.synced = true;
        this.tracker.reconcile(this.discovery.listControllers());
      }
      this.view.trigger('discovery synced', 0);
    });
    if (opts.registry) this.registerMetrics(opts.registry);
  }

  async start(): Promise<void> {
    await this.credentials.load();
    this.discovery.start().catch((err: unknown) => {
      if (!this.stopping) this.log.error({ err }, 'controller discovery stopped');
    });
    this.view.start();
    this.reconciler.start();
    this.log.info(
      { etcd: this.opts.config.etcd.endpoints, prefix: this.opts.config.etcd.watch_prefix },
      'watching etcd for controllers',
    );
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.reconciler.stop();
      await this.batches.stop();
      await this.view.stop();
      await this.discovery.stop();
      await this.tracker.stop();
      await this.pools.close();
      if (this.ownsEtcd) this.etcd.close();
    })();
    return this.stopping;
  }

  discoveryState(): DiscoveryState {
    const s = this.discovery.stats();
    return {
      synced: this.synced,
      watching: s.running,
      revision: s.revision,
      last_error: this.lastDiscoveryError,
    };
  }

  listControllers(): Controller[] {
    return this.discovery.listControllers();
  }

  /** The etcd client (for the PKI service: revocations, renewals). */
  get etcdClient(): Etcd3 {
    return this.etcd;
  }

  /** After a credential change: new clients for the area, and a fresh view. */
  async credentialsChanged(area: string): Promise<void> {
    await this.credentials.reload();
    this.pools.refreshArea(area);
    this.view.trigger('credentials changed', 0);
  }

  /** The agent's area: its device's function_area, else where the aggregated view saw it. */
  async locate(code: string): Promise<AgentLocation> {
    const device = await this.opts.store.devices.getByAgentCode(code);
    const area = device?.functionArea ?? this.view.get(code)?.area;
    if (!area)
      throw new AgentNotFoundError(code, `no device has agent code '${code}' and no controller lists it`);
    return { code, area, device };
  }

  /**
   * Runs `fn` against the online controllers of the agent's area — the one the view says holds
   * the agent first — until one knows the agent. Typed errors: 404 agent_not_found when none
   * does, 503 when the area has no online controller, 504 on timeout, 502 for a controller that
   * misbehaves or rejects the platform's credentials.
   */
  async onAgent<T>(
    code: string,
    fn: (client: ControllerClient, signal: AbortSignal) => Promise<T>,
  ): Promise<{ value: T; location: AgentLocation; controller: PooledController }> {
    const location = await this.locate(code);
    const { area, device } = location;
    const online = this.pools.onlineControllers(area);
    if (online.length === 0) {
      throw new ControllerUnavailableError(
        area,
        `no online controller for area '${area}' (agent '${code}'${device ? `, device ${device.name}` : ''})`,
      );
    }
    const holder = this.view.get(code)?.controller_id;
    const ordered = [...online].sort(
      (a, b) => Number(b.controller.id === holder) - Number(a.controller.id === holder),
    );
    const timeoutMs = this.opts.config.controller.api_timeout;
    const signal = AbortSignal.timeout(timeoutMs);
    let lastError: unknown;
    for (const pc of ordered) {
      try {
        return { value: await fn(pc.client, signal), location, controller: pc };
      } catch (err) {
        if (err instanceof PackageNotFoundError) throw err;
        if (err instanceof AgentNotFoundError) continue;
        if (signal.aborted)
          throw new RequestTimeoutError(
            `asking the controllers of area '${area}' about agent '${code}'`,
            timeoutMs,
          );
        lastError = err;
        this.log.warn(
          { area, controller: pc.key, agent: code, err: (err as Error).message },
          'controller request failed; trying the next',
        );
      }
    }
    if (lastError !== undefined)
      throw upstreamError(lastError, area, online.length === 1 ? online[0]?.key : undefined);
    throw new AgentNotFoundError(
      code,
      `agent '${code}' is not known to any controller of area '${area}'` +
        (device ? ` (device ${device.name}); is the agent installed and running?` : ''),
    );
  }

  private registerMetrics(registry: Registry): void {
    // Gauges' collect() runs with the gauge as `this`: capture what they read.
    const { discovery, view } = this;
    new Gauge({
      name: 'opsplane_controllers',
      help: 'Registered controllers by status',
      labelNames: ['status'] as const,
      registers: [registry],
      collect() {
        this.reset();
        const counts = { online: 0, offline: 0 };
        for (const c of discovery.listControllers()) counts[c.status]++;
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'opsplane_agents',
      help: 'Agents in the aggregated view by status',
      labelNames: ['status'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [status, n] of view.current.countsByStatus()) this.set({ status }, n);
      },
    });
    new Gauge({
      name: 'opsplane_agent_view_age_seconds',
      help: 'Age of the aggregated agent view (-1 before the first build)',
      registers: [registry],
      collect() {
        const at = view.snapshot().refreshedAt;
        this.set(at ? (Date.now() - at.getTime()) / 1000 : -1);
      },
    });
    new Gauge({
      name: 'opsplane_agent_view_refresh_seconds',
      help: 'Duration of the last refresh of the aggregated agent view',
      registers: [registry],
      collect() {
        this.set((view.lastRefresh?.durationMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: 'opsplane_agent_view_errors',
      help: 'Controllers or areas the last refresh of the agent view could not list',
      registers: [registry],
      collect() {
        this.set(view.snapshot().errors.length);
      },
    });
  }
}
