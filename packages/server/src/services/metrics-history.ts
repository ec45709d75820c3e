/**
 * Metrics over time. Every `server.metrics_history.interval` the server asks every online agent
 * of the aggregated view for its system metrics and its packages' metrics (through the
 * controllers, `max_workers` agents at a time, each call bounded by controller.api_timeout) and
 * stores one point per agent and package, stamped with the start of the interval — so several
 * servers on one database store each point once. Points older than the retention are purged.
 * Also the one place metric rows become the API's MetricsHistory.
 *
 * What an agent that is offline or unreachable at a tick did is not known: that tick has no
 * point (a gap in the chart), never a zero.
 */
import { iso, type MetricsHistory, type MetricsHistoryQuery } from '@opsplane/api';
import { ConcurrencyLimiter, type Logger } from '@opsplane/platform';
import type { AgentMetricsRow, PackageMetricsRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import type { PlatformServices } from './platform.js';

export interface MetricsHistoryOptions {
  store: Store;
  platform: PlatformServices;
  intervalMs: number;
  retentionMs: number;
  maxWorkers: number;
  logger: Logger;
}

export function toMetricsHistory(
  code: string,
  rows: { system: AgentMetricsRow[]; packages: PackageMetricsRow[] },
  o: { intervalMs: number; retentionMs: number; from: Date; to: Date },
): MetricsHistory {
  const byPackage = new Map<string, MetricsHistory['packages'][number]['points']>();
  for (const p of rows.packages) {
    const points = byPackage.get(p.package) ?? byPackage.set(p.package, []).get(p.package)!;
    points.push({
      at: iso(p.at),
      cpu_percent: p.cpuPercent,
      rss_bytes: p.rssBytes,
      restarts: p.restarts,
      running: p.running,
    });
  }
  return {
    agent_code: code,
    interval_ms: o.intervalMs,
    retention_ms: o.retentionMs,
    from: iso(o.from),
    to: iso(o.to),
    system: rows.system.map((r) => ({
      at: iso(r.at),
      cpu_percent: r.cpuPercent,
      memory_used_bytes: r.memoryUsedBytes,
      memory_total_bytes: r.memoryTotalBytes,
      memory_used_percent: r.memoryTotalBytes > 0 ? (100 * r.memoryUsedBytes) / r.memoryTotalBytes : 0,
      load1: r.load1,
      rx_bytes: r.rxBytes,
      tx_bytes: r.txBytes,
    })),
    packages: [...byPackage].map(([name, points]) => ({ name, points })),
  };
}

export class MetricsHistoryService {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private abort = new AbortController();
  private lastPurge = 0;
  private samples = 0;

  constructor(private readonly o: MetricsHistoryOptions) {}

  /** Sampling rounds completed (tests wait on it). */
  get rounds(): number {
    return this.samples;
  }

  /** Starts sampling (again after a stop: the cluster leader runs it). */
  start(): void {
    if (this.o.intervalMs <= 0) return;
    this.stopped = false;
    this.abort = new AbortController();
    const tick = () => {
      if (this.stopped || this.running) return;
      this.running = this.sample()
        .then(() => undefined)
        .catch((err: unknown) => {
          if (!this.stopped) this.o.logger.warn({ err }, 'metrics sampling failed');
        })
        .finally(() => {
          this.running = undefined;
        });
    };
    // Aligned to the interval, so points of every agent (and every server) share instants.
    const first = this.o.intervalMs - (Date.now() % this.o.intervalMs);
    this.timer = setTimeout(() => {
      tick();
      this.timer = setInterval(tick, this.o.intervalMs);
      this.timer.unref();
    }, first);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.timer);
    this.abort.abort();
    await this.running;
  }

  /** One round: every online agent of the view, now. */
  async sample(now = Date.now()): Promise<{ agents: number; failed: number }> {
    const { platform, store, intervalMs } = this.o;
    const at = new Date(now - (now % Math.max(1, intervalMs)));
    const agents = platform.view.current.all().filter((a) => a.status === 'online');
    const limiter = new ConcurrencyLimiter(this.o.maxWorkers);
    const system: AgentMetricsRow[] = [];
    const packages: PackageMetricsRow[] = [];
    let failed = 0;
    await Promise.all(
      agents.map((a) =>
        limiter.run(async () => {
          if (this.stopped) return;
          try {
            const [sys, svc] = await Promise.all([
              platform.onAgent(a.agent_code, (c, s) => c.getSystemMetrics(a.agent_code, s)),
              platform.onAgent(a.agent_code, (c, s) => c.getServiceMetrics(a.agent_code, {}, s)),
            ]);
            const m = sys.value;
            system.push({
              agentCode: a.agent_code,
              at,
              cpuPercent: m.cpu_percent,
              memoryUsedBytes: m.memory.used_bytes,
              memoryTotalBytes: m.memory.total_bytes,
              load1: m.load_average.load1,
              rxBytes: m.network.rx_bytes,
              txBytes: m.network.tx_bytes,
            });
            for (const p of svc.value.services)
              packages.push({
                agentCode: a.agent_code,
                package: p.name,
                at,
                cpuPercent: p.cpu_percent,
                rssBytes: p.rss_bytes,
                // Go agents report neither: no restarts counted; running when it has a process.
                restarts: p.restarts ?? 0,
                running: p.is_running ?? (p.pid !== undefined && p.pid > 0),
              });
          } catch {
            failed++;
          }
        }),
      ),
    );
    await store.metrics.insert(system, packages);
    if (now - this.lastPurge > Math.min(3600_000, this.o.retentionMs / 4)) {
      this.lastPurge = now;
      await store.metrics.purge(new Date(now - this.o.retentionMs));
    }
    this.samples++;
    if (failed > 0)
      this.o.logger.debug({ agents: agents.length, failed }, 'metrics sampled, some agents did not answer');
    return { agents: agents.length, failed };
  }

  async history(code: string, q: MetricsHistoryQuery): Promise<MetricsHistory> {
    const to = new Date();
    const from = new Date(to.getTime() - Math.min(q.window, this.o.retentionMs));
    const rows = await this.o.store.metrics.history(code, from, q.package);
    return toMetricsHistory(code, rows, {
      intervalMs: this.o.intervalMs,
      retentionMs: this.o.retentionMs,
      from,
      to,
    });
  }
}
