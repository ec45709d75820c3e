/**
 * Optional local observability endpoint (`metrics_listen`): Prometheus `/metrics` (agent, link
 * and per-package gauges, plus process defaults) and `/healthz`, on a plain node:http server.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Supervisor } from '../packages/supervisor.js';

export interface LinkSnapshot {
  connected: boolean;
  controller: string | undefined;
}

const HEALTH_VALUE = { healthy: 1, degraded: 0.5, unhealthy: 0, unknown: -1 } as const;

export class AgentMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'op' | 'ok'>;
  readonly connects: Counter<'controller' | 'result'>;

  constructor(supervisor: Supervisor, link: () => LinkSnapshot) {
    collectDefaultMetrics({ register: this.registry, prefix: 'opsplane_agent_' });
    this.requests = new Counter({
      name: 'opsplane_agent_requests_total',
      help: 'Controller requests handled, by op and outcome',
      labelNames: ['op', 'ok'],
      registers: [this.registry],
    });
    this.connects = new Counter({
      name: 'opsplane_agent_connect_attempts_total',
      help: 'Connection attempts to controllers, by result',
      labelNames: ['controller', 'result'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'opsplane_agent_connected',
      help: '1 while a controller connection is established',
      registers: [this.registry],
      collect() {
        this.set(link().connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'opsplane_agent_package_up',
      help: '1 when the package process runs',
      labelNames: ['package'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of supervisor.list()) this.set({ package: s.name }, s.is_running ? 1 : 0);
      },
    });
    new Gauge({
      name: 'opsplane_agent_package_restarts',
      help: 'Restarts of the package since the agent started',
      labelNames: ['package'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of supervisor.list()) this.set({ package: s.name }, s.restarts ?? 0);
      },
    });
    new Gauge({
      name: 'opsplane_agent_package_health',
      help: 'Package health: 1 healthy, 0 unhealthy, -1 unknown',
      labelNames: ['package'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const s of supervisor.list())
          this.set({ package: s.name }, HEALTH_VALUE[s.health_status ?? 'unknown']);
      },
    });
  }
}

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function startMetricsServer(
  listen: { host: string; port: number },
  metrics: AgentMetrics,
  healthz: () => Record<string, unknown>,
  logger: Logger,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      metrics.registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body))
        .catch((e: unknown) => {
          logger.warn({ err: e }, 'metrics collection failed');
          res.writeHead(500).end();
        });
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(healthz()));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  logger.info({ host: addr.address, port: addr.port }, 'metrics endpoint listening');
  return {
    host: addr.address,
    port: addr.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
