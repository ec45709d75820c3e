/**
 * FleetView: the aggregated agent view across every controller of every area (guide §3.2),
 * kept warm in memory (guide §5.3) and served from an AgentIndex.
 *
 * A refresh lists every online controller of every known area with aggregateAgents (controllers
 * concurrently, bounded by concurrency.max_workers; areas that have devices or credentials but
 * no controller are reported), joins the agents with their devices by agent code, builds a new
 * index and swaps it in. Refreshes run on a timer (server.agents_refresh_interval), when
 * discovery reports a controller came, went or changed (debounced), and on demand; they are
 * single-flight, and `refresh()` always waits for a build that started after it was called.
 *
 * Nothing is dropped silently: every controller or area the last refresh could not list is in
 * `errors`, and the view says `stale` when it is older than cache.agent_ttl, was never built or
 * discovery has not synced with etcd. A refresh that fails as a whole keeps the previous index.
 */
import { performance } from 'node:perf_hooks';
import {
  aggregateAgents,
  ConcurrencyLimiter,
  type AggregatedAgent,
  type ControllerClientPool,
  type Logger,
} from '@opsplane/platform';
import type { AgentFilter, AgentView, DiscoveryState, ViewError } from '@opsplane/api';
import type { AgentDeviceRef } from '../storage/devices-repo.js';
import type { Store } from '../storage/store.js';
import { AgentIndex, type AgentPage, type AgentQuery } from './agent-index.js';
import { SerialTask } from '@opsplane/kit';

export interface FleetViewOptions {
  pools: ControllerClientPool;
  store: Store;
  discovery: () => DiscoveryState;
  /** Areas expected to have controllers besides the devices' (e.g. those with credentials). */
  extraAreas: () => readonly string[];
  refreshIntervalMs: number;
  ttlMs: number;
  maxWorkers: number;
  /** Page size used to list controllers (the controller API allows up to 1000). */
  listPageSize?: number;
  /** Delay that coalesces bursts of discovery changes into one refresh. */
  debounceMs?: number;
  logger: Logger;
}

export interface ViewSnapshot {
  refreshedAt: Date | null;
  stale: boolean;
  refreshing: boolean;
  errors: ViewError[];
}

export interface RefreshInfo {
  agents: number;
  errors: number;
  durationMs: number;
}

interface ControllerListing {
  listed: number;
  error: { code: string; message: string } | null;
}

export function toAgentView(agg: AggregatedAgent, device: AgentDeviceRef | undefined): AgentView {
  const a = agg.agent;
  const v: AgentView = {
    id: agg.id,
    agent_code: agg.agent_code,
    area: agg.area,
    controller_id: agg.controller_id,
    device_id: device?.id ?? null,
    device_name: device?.name ?? null,
    address: agg.address,
    hostname: agg.hostname,
    status: agg.status,
    health_status: agg.health_status,
    service_count: agg.service_count,
    last_heartbeat: agg.last_heartbeat,
    register_time: a.register_time,
    ...(a.last_health_check !== undefined ? { last_health_check: a.last_health_check } : {}),
    version: agg.version,
    labels: a.labels,
    services: a.services,
  };
  for (const k of ['zone', 'mode', 'group', 'deployment', 'os', 'arch'] as const) {
    const x = a[k];
    if (x !== undefined) v[k] = x;
  }
  if (a.distribution !== undefined) v.distribution = a.distribution;
  return v;
}

export class FleetView {
  private index = AgentIndex.empty();
  private builtAt: number | undefined;
  private errors: ViewError[] = [];
  private listings = new Map<string, ControllerListing>();
  private readonly builds = new SerialTask<RefreshInfo>(() => this.run());
  private timer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  private stopped = false;
  private lastInfo: RefreshInfo | undefined;
  private refreshes = 0;
  private readonly refreshListeners = new Set<() => void>();

  constructor(private readonly opts: FleetViewOptions) {}

  /** Starts the periodic refresh (the first build is triggered by discovery's first sync). */
  start(): void {
    this.timer = setInterval(() => this.trigger('timer', 0), this.opts.refreshIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.debounceTimer);
    this.abort.abort(new Error('server stopping'));
    await this.builds.idle();
  }

  /** Schedules a refresh soon (coalescing bursts); errors are logged. */
  trigger(reason: string, delayMs = this.opts.debounceMs ?? 300): void {
    if (this.stopped || this.debounceTimer) return;
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = undefined;
      this.refresh().catch((err: unknown) => {
        if (!this.stopped) this.opts.logger.warn({ err, reason }, 'agent view refresh failed');
      });
    }, delayMs);
    this.debounceTimer.unref();
  }

  /** Calls `cb` after every successful build (the alert engine evaluates then). Returns the unsubscribe. */
  onRefresh(cb: () => void): () => void {
    this.refreshListeners.add(cb);
    return () => this.refreshListeners.delete(cb);
  }

  /** Resolves once a build that started after this call has finished. */
  refresh(): Promise<RefreshInfo> {
    if (this.stopped) return Promise.reject(new Error('the agent view is stopped'));
    return this.builds.run();
  }

  get current(): AgentIndex {
    return this.index;
  }

  get lastRefresh(): RefreshInfo | undefined {
    return this.lastInfo;
  }

  get refreshCount(): number {
    return this.refreshes;
  }

  snapshot(): ViewSnapshot {
    const d = this.opts.discovery();
    const errors = [...this.errors];
    if (!d.synced) {
      errors.unshift({
        area: '',
        controller_id: '',
        code: 'discovery_unavailable',
        message: `controller discovery has not synced with etcd yet${d.last_error ? `: ${d.last_error}` : ''}`,
      });
    }
    const age = this.builtAt === undefined ? Infinity : Date.now() - this.builtAt;
    return {
      refreshedAt: this.builtAt === undefined ? null : new Date(this.builtAt),
      stale: age > this.opts.ttlMs || !d.synced,
      refreshing: this.builds.busy,
      errors,
    };
  }

  query(q: AgentQuery): AgentPage & ViewSnapshot {
    return { ...this.index.query(q), ...this.snapshot() };
  }

  select(filter: AgentFilter): AgentView[] {
    return this.index.select(filter);
  }

  get(code: string): AgentView | undefined {
    return this.index.get(code);
  }

  /** What the last refresh got from one controller (`area/id`). */
  listingOf(key: string): ControllerListing | undefined {
    return this.listings.get(key);
  }

  private async run(): Promise<RefreshInfo> {
    const t0 = performance.now();
    const { store, pools } = this.opts;
    try {
      const deviceAreas = await store.devices.distinctAreas();
      const areas = [...new Set([...deviceAreas, ...this.opts.extraAreas()])];
      const [res, directory] = await Promise.all([
        aggregateAgents(pools, {
          limiter: new ConcurrencyLimiter(this.opts.maxWorkers),
          pageSize: this.opts.listPageSize ?? 1000,
          areas,
          signal: this.abort.signal,
        }),
        store.devices.agentDirectory(),
      ]);
      const views = res.agents.map((a) => toAgentView(a, directory.get(a.agent_code)));
      const listings = new Map<string, ControllerListing>();
      for (const a of res.agents) {
        const key = `${a.area}/${a.controller_id}`;
        const l = listings.get(key) ?? { listed: 0, error: null };
        l.listed++;
        listings.set(key, l);
      }
      for (const area of pools.areas())
        for (const pc of pools.onlineControllers(area))
          if (!listings.has(pc.key)) listings.set(pc.key, { listed: 0, error: null });
      const errors: ViewError[] = res.errors.map((e) => ({
        area: e.area,
        controller_id: e.controller_id,
        code: e.error.code,
        message: e.error.message,
      }));
      for (const e of errors) {
        if (!e.controller_id) continue;
        const key = `${e.area}/${e.controller_id}`;
        listings.set(key, {
          listed: listings.get(key)?.listed ?? 0,
          error: { code: e.code, message: e.message },
        });
      }
      const index = new AgentIndex(views);
      // The default order and the usual "latest first" are ready before the first request.
      index.warm(['area', 'last_heartbeat']);
      this.index = index;
      this.builtAt = Date.now();
      this.errors = errors;
      this.listings = listings;
      this.refreshes++;
      const info = { agents: views.length, errors: errors.length, durationMs: performance.now() - t0 };
      this.lastInfo = info;
      for (const cb of this.refreshListeners) {
        try {
          cb();
        } catch (err) {
          this.opts.logger.warn({ err }, 'agent view refresh listener failed');
        }
      }
      this.opts.logger.debug(
        { agents: info.agents, errors: info.errors, duration_ms: Math.round(info.durationMs) },
        'agent view refreshed',
      );
      return info;
    } catch (err) {
      if (this.stopped) throw err;
      // Keep the previous index; say why it did not move on.
      const message = err instanceof Error ? err.message : String(err);
      this.errors = [
        {
          area: '',
          controller_id: '',
          code: 'refresh_failed',
          message: `refreshing the agent view failed: ${message}`,
        },
        ...this.errors.filter((e) => e.code !== 'refresh_failed'),
      ];
      throw err;
    }
  }
}
