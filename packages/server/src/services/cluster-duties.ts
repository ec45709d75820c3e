/**
 * ClusterDuties: the work that must happen once cluster-wide, run by the elected leader among
 * the server replicas (cluster-leadership.ts) — alert evaluation and its webhook outbox, the
 * device status sync, controller history, sampling metrics over time, the distribution
 * convergence loop, purging expired sessions and rate-limit windows.
 * Every write they make is fenced by the leader's term. On election they start (from what the
 * database says); on demotion they stop; other replicas serve the API and run batches and
 * deployments (those are owned through leases in the database, not by the leader).
 *
 * Lifecycle: start() campaigns (the duties start when elected); stop() stops the duties and
 * resigns, so another replica takes over at once.
 */
import type { Etcd3 } from 'etcd3';
import type { Logger } from '@opsplane/kit';
import type { ServerConfig } from '../config.js';
import type { Store } from '../storage/store.js';
import { AlertEngine, platformAlertSources } from './alert-engine.js';
import { ClusterLeadership } from './cluster-leadership.js';
import type { ConvergenceLoop } from './convergence.js';
import type { DeploymentService } from './deployments.js';
import { DeviceStatusSync } from './device-status-sync.js';
import type { ServerMetrics } from './metrics.js';
import type { MetricsHistoryService } from './metrics-history.js';
import type { PlatformServices } from './platform.js';
import { WebhookOutbox } from './webhook-outbox.js';

const PURGE_INTERVAL_MS = 10 * 60_000;

export interface ClusterDutiesOptions {
  config: ServerConfig;
  store: Store;
  platform: PlatformServices;
  deployments: DeploymentService;
  metrics: ServerMetrics;
  /** Samples every online agent's metrics each interval: one replica is enough. */
  metricsHistory: MetricsHistoryService;
  /** undefined with an embedded database: this replica is the only one and leads alone. */
  etcd: Etcd3 | undefined;
  replicaId: string;
  userAgent: string;
  logger: Logger;
  /** Hands desired states to agents (distribution): one replica is enough. */
  convergence?: ConvergenceLoop;
}

export class ClusterDuties {
  readonly leadership: ClusterLeadership;
  readonly alerts: AlertEngine;
  readonly outbox: WebhookOutbox;
  readonly deviceStatus: DeviceStatusSync;
  readonly metricsHistory: MetricsHistoryService;
  private purgeTimer: NodeJS.Timeout | undefined;
  /** Stops of the previous leadership, awaited before the next start. */
  private stopping: Promise<void> = Promise.resolve();

  constructor(private readonly o: ClusterDutiesOptions) {
    const { config, store, platform, logger } = o;
    this.metricsHistory = o.metricsHistory;
    this.leadership = new ClusterLeadership({
      store,
      etcd: o.etcd,
      replicaId: o.replicaId,
      ttlMs: config.server.leader_ttl,
      logger: logger.child({ component: 'leadership' }),
    });
    const fenced = <T>(fn: (tx: Store) => Promise<T>) => this.leadership.fenced(fn);
    const a = config.server.alerts;
    this.outbox = new WebhookOutbox({
      store,
      webhooks: a.webhooks,
      timeoutMs: a.timeout,
      maxAttempts: a.max_attempts,
      counter: o.metrics.alertNotifications,
      logger: logger.child({ component: 'webhook-outbox' }),
      userAgent: o.userAgent,
    });
    this.alerts = new AlertEngine({
      store,
      sources: platformAlertSources(platform, o.deployments),
      write: fenced,
      notify: async (tx, event, alert) => {
        await this.outbox.enqueue(tx, event, alert);
        setImmediate(() => this.outbox.kick());
      },
      intervalMs: a.interval,
      pendingForMs: a.pending_for,
      logger,
    });
    this.deviceStatus = new DeviceStatusSync({
      store,
      platform,
      write: fenced,
      logger: logger.child({ component: 'device-status' }),
    });
    const leading = o.metrics.clusterLeader.labels({ replica: o.replicaId });
    leading.set(0);
    this.leadership.on('elected', (term) => {
      leading.set(1);
      o.metrics.clusterLeaderTerm.set(term);
      void this.stopping.then(() => this.lead(fenced));
    });
    this.leadership.on('demoted', () => {
      leading.set(0);
      o.metrics.clusterLeaderTerm.set(0);
      this.stopping = this.follow();
    });
  }

  start(): void {
    this.leadership.start();
  }

  async stop(): Promise<void> {
    // The duties first: what stopping the rest looks like (agents gone, …) is not an alert.
    await this.follow();
    await this.leadership.stop();
  }

  private lead(fenced: <T>(fn: (tx: Store) => Promise<T>) => Promise<T>): void {
    if (!this.leadership.isLeader) return;
    const { platform, store, logger } = this.o;
    this.outbox.start();
    this.deviceStatus.start();
    this.metricsHistory.start();
    this.o.convergence?.start();
    // Controller history after the alert engine has read which controllers it says are
    // present: those gone while no leader watched must still alert.
    void this.alerts.start().then(() => {
      if (this.leadership.isLeader) platform.tracker.lead(fenced, platform.discoveryState().synced);
    });
    const purge = () => {
      store.sessions
        .purgeExpired()
        .then(() => store.rateLimits.purgeExpired())
        .catch((err: unknown) => logger.warn({ err }, 'purging expired sessions failed'));
    };
    purge();
    this.purgeTimer = setInterval(purge, PURGE_INTERVAL_MS);
    this.purgeTimer.unref();
  }

  private async follow(): Promise<void> {
    clearInterval(this.purgeTimer);
    this.o.platform.tracker.follow();
    await this.deviceStatus.stop();
    await this.metricsHistory.stop();
    await this.o.convergence?.stop();
    await this.alerts.stop();
    await this.outbox.stop();
  }
}
