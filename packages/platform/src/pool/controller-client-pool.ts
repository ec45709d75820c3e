/**
 * ControllerClientPool: one ControllerClient per discovered controller (`area/id`), kept in step
 * with a ControllerSource (discovery). It fixes the guide's pool (§3.1, §5.2), which kept one
 * client per *area* (so HA controllers overwrote each other), never removed clients and never
 * noticed address changes.
 *
 * Clients are created on update (or lazily when asked for a controller the events have not
 * brought yet), replaced when a controller's address changes (the old one is closed after its
 * in-flight requests) and closed on delete. Which controllers are online, and their heartbeat
 * order, is always read from the source at call time, so the pool never serves a stale view.
 */
import { ControllerUnavailableError, OpsplaneError, timestampMs, type Controller } from '@opsplane/models';
import { ControllerClient, type ControllerClientOptions } from '../client/controller-client.js';
import { createLogger, type Logger } from '@opsplane/kit';
import type { ControllerSource } from './controller-source.js';

export interface ControllerClientPoolOptions {
  /** Options for every client (timeouts, retries, token, shared dispatcher…). */
  clientOptions?: Omit<ControllerClientOptions, 'logger'>;
  /**
   * The controller API token of an area, when areas have their own (separate trust domains: a
   * compromised controller of one area must not hold a token valid in the others). Overrides
   * `clientOptions.apiToken`; read whenever a client is created — call refreshArea() after a
   * token changes.
   */
  apiTokenFor?: (area: string) => string | undefined;
  logger?: Logger;
}

/** A controller together with its client. */
export interface PooledController {
  /** `area/id`, as discovery's delete callback names it. */
  key: string;
  controller: Controller;
  client: ControllerClient;
}

interface Entry {
  address: string;
  token: string | undefined;
  client: ControllerClient;
}

export function controllerPoolKey(c: Pick<Controller, 'area' | 'id'>): string {
  return `${c.area}/${c.id}`;
}

/** Online first, then freshest heartbeat first; id breaks ties so the order is stable. */
function byPreference(a: Controller, b: Controller): number {
  if (a.status !== b.status) return a.status === 'online' ? -1 : 1;
  const d = timestampMs(b.last_heartbeat) - timestampMs(a.last_heartbeat);
  return d !== 0 ? d : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class ControllerClientPool {
  private readonly entries = new Map<string, Entry>();
  private readonly unsubscribe: (() => void)[];
  private readonly clientOptions: Omit<ControllerClientOptions, 'logger'>;
  private readonly apiTokenFor: ((area: string) => string | undefined) | undefined;
  private readonly log: Logger;
  private readonly closing = new Set<Promise<void>>();
  private closed = false;
  /** `key address` pairs already warned about, so a bad registration logs once. */
  private readonly badAddresses = new Set<string>();

  constructor(
    private readonly source: ControllerSource,
    options: ControllerClientPoolOptions = {},
  ) {
    this.clientOptions = options.clientOptions ?? {};
    this.apiTokenFor = options.apiTokenFor;
    this.log = options.logger ?? createLogger('controller-client-pool');
    // Subscribe before the snapshot so nothing between the two is missed; applying an
    // update twice is harmless.
    this.unsubscribe = [
      source.onControllerUpdate((c) => this.upsert(c)),
      source.onControllerDelete((key) => this.remove(key)),
    ];
    for (const c of source.listControllers()) this.upsert(c);
  }

  /** Number of clients held. */
  get size(): number {
    return this.entries.size;
  }

  /** Keys (`area/id`) of the controllers that have a client. */
  keys(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Areas that have at least one known controller (online or not). */
  areas(): string[] {
    return [...new Set(this.source.listControllers().map((c) => c.area))].sort();
  }

  /** Every known controller, as the source reports it now. */
  listControllers(): Controller[] {
    return this.source.listControllers();
  }

  /**
   * Online controllers of `area` with their clients, freshest heartbeat first. A controller
   * whose registered address cannot be used is left out (and logged when it appears).
   */
  onlineControllers(area: string): PooledController[] {
    this.assertOpen();
    const out: PooledController[] = [];
    for (const c of this.source
      .listControllersByArea(area)
      .filter((x) => x.status === 'online')
      .sort(byPreference)) {
      const client = this.upsert(c);
      if (client) out.push({ key: controllerPoolKey(c), controller: c, client });
    }
    return out;
  }

  /** Online controllers of every area, grouped by area (areas sorted). */
  allOnlineControllers(): Map<string, PooledController[]> {
    const out = new Map<string, PooledController[]>();
    for (const area of this.areas()) {
      const online = this.onlineControllers(area);
      if (online.length > 0) out.set(area, online);
    }
    return out;
  }

  /** Clients of the online controllers of `area`, freshest heartbeat first. */
  clientsForArea(area: string): ControllerClient[] {
    return this.onlineControllers(area).map((p) => p.client);
  }

  /** The client of the freshest online controller of `area`. */
  getClient(area: string): ControllerClient {
    const first = this.onlineControllers(area)[0];
    if (!first) throw new ControllerUnavailableError(area);
    return first.client;
  }

  /** The client of one controller by area and id, whatever its status; undefined if unknown. */
  getClientFor(area: string, id: string): ControllerClient | undefined {
    this.assertOpen();
    const c = this.source.listControllersByArea(area).find((x) => x.id === id);
    return c ? this.upsert(c) : undefined;
  }

  /** Unsubscribes from the source and closes every client. Idempotent. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      for (const off of this.unsubscribe) off();
      for (const e of this.entries.values()) this.retire(e.client);
      this.entries.clear();
    }
    await Promise.all([...this.closing]);
  }

  /** New clients for the area's controllers (e.g. its token changed); old ones close in the background. */
  refreshArea(area: string): void {
    for (const c of this.source.listControllersByArea(area)) this.upsert(c);
  }

  private assertOpen(): void {
    if (this.closed) throw new OpsplaneError('internal', 'ControllerClientPool is closed');
  }

  /**
   * Creates or replaces the client for `c` and returns it; undefined after close or when the
   * address is unusable (never throws: it runs inside discovery callbacks).
   */
  private upsert(c: Controller): ControllerClient | undefined {
    if (this.closed) return undefined;
    const key = controllerPoolKey(c);
    const existing = this.entries.get(key);
    const token = this.apiTokenFor ? this.apiTokenFor(c.area) : this.clientOptions.apiToken;
    if (existing && existing.address === c.address && existing.token === token) return existing.client;
    let client: ControllerClient;
    try {
      const { apiToken: _shared, ...rest } = this.clientOptions;
      client = new ControllerClient(c.address, c.area, {
        ...rest,
        ...(token !== undefined ? { apiToken: token } : {}),
        logger: this.log.child({ controller: key }),
      });
    } catch (err) {
      // A controller that registered an unusable address: leave it without a client rather
      // than break the discovery callback; requests for it fail as unavailable.
      if (existing) {
        this.entries.delete(key);
        this.retire(existing.client);
      }
      if (!this.badAddresses.has(`${key} ${c.address}`)) {
        this.badAddresses.add(`${key} ${c.address}`);
        this.log.warn({ controller: key, address: c.address, err }, 'cannot create a client for controller');
      }
      return undefined;
    }
    this.entries.set(key, { address: c.address, token, client });
    if (existing) {
      if (existing.address !== c.address)
        this.log.info(
          { controller: key, from: existing.address, to: c.address },
          'controller address changed',
        );
      this.retire(existing.client);
    }
    return client;
  }

  private remove(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.retire(e.client);
  }

  /** Closes a client in the background; `close()` waits for all of these. */
  private retire(client: ControllerClient): void {
    const p = client
      .close()
      .catch((err: unknown) => this.log.warn({ err }, 'closing controller client failed'))
      .finally(() => this.closing.delete(p));
    this.closing.add(p);
  }
}
