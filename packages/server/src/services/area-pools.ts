/**
 * AreaPools: one ControllerClientPool per area, so that each area's controllers are called with
 * that area's controller API token (areas are separate trust domains; one platform-wide token
 * would let a compromised controller of one area call every other). Together they look like
 * one pool to aggregateAgents and batchAcrossAreas (areas / listControllers /
 * onlineControllers).
 *
 * It subscribes to discovery once and fans events out to per-area sources (so a hundred areas
 * do not mean two hundred discovery listeners). When an area's token changes, resetArea()
 * replaces that area's pool; the old one is closed in the background once its in-flight
 * requests are done.
 */
import type { Controller } from '@opsplane/models';
import {
  ControllerClientPool,
  type ControllerClientOptions,
  type ControllerSource,
  type Logger,
  type PooledController,
} from '@opsplane/platform';

/** The discovery side AreaPools needs. */
export type DiscoverySource = ControllerSource;

class AreaSource implements ControllerSource {
  readonly updates = new Set<(c: Controller) => void>();
  readonly deletes = new Set<(key: string) => void>();
  constructor(
    private readonly discovery: DiscoverySource,
    readonly area: string,
  ) {}
  listControllers(): Controller[] {
    return this.discovery.listControllersByArea(this.area);
  }
  listControllersByArea(area: string): Controller[] {
    return area === this.area ? this.discovery.listControllersByArea(area) : [];
  }
  onControllerUpdate(cb: (c: Controller) => void): () => void {
    this.updates.add(cb);
    return () => void this.updates.delete(cb);
  }
  onControllerDelete(cb: (key: string) => void): () => void {
    this.deletes.add(cb);
    return () => void this.deletes.delete(cb);
  }
}

interface AreaEntry {
  source: AreaSource;
  pool: ControllerClientPool;
}

export interface AreaPoolsOptions {
  /** Options of every client (timeouts, retries); the token comes from tokenFor. */
  clientOptions: Omit<ControllerClientOptions, 'logger' | 'apiToken'>;
  /** The controller API token of an area, read when the area's pool is (re)created. */
  tokenFor: (area: string) => string | undefined;
  logger: Logger;
}

export class AreaPools {
  private readonly areasMap = new Map<string, AreaEntry>();
  private readonly unsubscribe: (() => void)[];
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly discovery: DiscoverySource,
    private readonly opts: AreaPoolsOptions,
  ) {
    this.unsubscribe = [
      discovery.onControllerUpdate((c) => {
        const e = this.entry(c.area);
        if (e) for (const cb of e.source.updates) cb(c);
      }),
      discovery.onControllerDelete((key) => {
        const area = key.slice(0, key.indexOf('/'));
        const e = this.areasMap.get(area);
        if (e) for (const cb of e.source.deletes) cb(key);
      }),
    ];
  }

  /** Areas with at least one known controller. */
  areas(): string[] {
    return [...new Set(this.discovery.listControllers().map((c) => c.area))].sort();
  }

  listControllers(): Controller[] {
    return this.discovery.listControllers();
  }

  /** Online controllers of `area` with clients carrying the area's token, freshest first. */
  onlineControllers(area: string): PooledController[] {
    const e = this.entry(area);
    return e ? e.pool.onlineControllers(area) : [];
  }

  /** Forget the area's clients (e.g. its token changed); the next call creates new ones. */
  resetArea(area: string): void {
    const e = this.areasMap.get(area);
    if (!e) return;
    this.areasMap.delete(area);
    this.retire(e.pool);
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const off of this.unsubscribe) off();
      for (const e of this.areasMap.values()) this.retire(e.pool);
      this.areasMap.clear();
    }
    await Promise.all([...this.closing]);
  }

  private entry(area: string): AreaEntry | undefined {
    if (this.closed) return undefined;
    let e = this.areasMap.get(area);
    if (e) return e;
    // Only areas discovery knows get a pool (no pools for names typed into a request).
    if (this.discovery.listControllersByArea(area).length === 0) return undefined;
    const source = new AreaSource(this.discovery, area);
    const token = this.opts.tokenFor(area);
    const pool = new ControllerClientPool(source, {
      clientOptions: { ...this.opts.clientOptions, ...(token ? { apiToken: token } : {}) },
      logger: this.opts.logger.child({ area }),
    });
    e = { source, pool };
    this.areasMap.set(area, e);
    return e;
  }

  private retire(pool: ControllerClientPool): void {
    const p = pool
      .close()
      .catch((err: unknown) => this.opts.logger.warn({ err }, 'closing an area pool failed'))
      .finally(() => this.closing.delete(p));
    this.closing.add(p);
  }
}
