/**
 * Prometheus metrics, on a registry per server (not prom-client's global one) so that several
 * servers in one process — tests — do not collide.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ALERT_KINDS, ALERT_SEVERITIES } from '@opsplane/api';
import type { Store } from '../storage/store.js';

export interface ServerMetrics {
  registry: Registry;
  /** Finished deployments by type and outcome, with how long they ran. */
  deploymentDuration: Histogram<'type' | 'status'>;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  loginFailures: Counter;
  /** Webhook deliveries of alert notifications: delivered, retried, failed, dropped. */
  alertNotifications: Counter<'result'>;
  /** 1 while this replica is the elected cluster leader (alerts, outbox, status sync), else 0. */
  clusterLeader: Gauge<'replica'>;
  /** The leader term this replica holds (0 when it does not lead). */
  clusterLeaderTerm: Gauge;
}

export function createMetrics(store: Store): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const httpRequests = new Counter({
    name: 'opsplane_http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'opsplane_http_request_duration_seconds',
    help: 'HTTP request duration by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const loginFailures = new Counter({
    name: 'opsplane_login_failures_total',
    help: 'Failed login attempts',
    registers: [registry],
  });
  new Gauge({
    name: 'opsplane_devices',
    help: 'Devices by status',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const [status, n] of Object.entries(await store.devices.countByStatus())) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'opsplane_deployments',
    help: 'Deployments by status (queued and running ones are the queue)',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const [status, n] of Object.entries(await store.deployments.countByStatus()))
        this.set({ status }, n);
    },
  });
  const deploymentDuration = new Histogram({
    name: 'opsplane_deployment_duration_seconds',
    help: 'Finished deployments (install, upgrade, uninstall, restart) by outcome: claimed to finished',
    labelNames: ['type', 'status'] as const,
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600],
    registers: [registry],
  });
  new Gauge({
    name: 'opsplane_alerts_firing',
    help: 'Firing alerts by kind and severity',
    labelNames: ['kind', 'severity'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      // Every series exists (0 when quiet), so that rules on it need no absent().
      for (const kind of ALERT_KINDS)
        for (const severity of ALERT_SEVERITIES) this.set({ kind, severity }, 0);
      for (const r of await store.alerts.countFiring()) this.set({ kind: r.kind, severity: r.severity }, r.n);
    },
  });
  const alertNotifications = new Counter({
    name: 'opsplane_alert_notifications_total',
    help: 'Alert webhook deliveries by result (delivered, retried = an attempt to be retried, failed, dropped)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const clusterLeader = new Gauge({
    name: 'opsplane_cluster_leader',
    help: 'Whether this server replica is the elected cluster leader (1) or not (0)',
    labelNames: ['replica'] as const,
    registers: [registry],
  });
  const clusterLeaderTerm = new Gauge({
    name: 'opsplane_cluster_leader_term',
    help: 'The leader term this replica holds (0 when it does not lead)',
    registers: [registry],
  });
  return {
    registry,
    httpRequests,
    httpDuration,
    loginFailures,
    deploymentDuration,
    alertNotifications,
    clusterLeader,
    clusterLeaderTerm,
  };
}
