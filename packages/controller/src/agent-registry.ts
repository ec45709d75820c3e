/**
 * The agents this controller knows: connected ones and, for `offline_retention`, the ones that
 * were connected and are gone (listed with their last known state and status offline).
 *
 * Built for tens of thousands of agents: one Map keyed by agent code (O(1) lookups and
 * heartbeats, which only assign fields), a connected counter kept incrementally, a sorted code
 * list rebuilt only when membership changes (not on heartbeats) for stable pagination, and no
 * timers per agent — `sweep()` is called by one timer and walks the map once.
 */
import {
  type Agent,
  type AgentFilterKey,
  type AgentInfo,
  type DistributionStatus,
  type HealthStatus,
  type PackageStatus,
} from '@opsplane/models';
import type { AgentConnection } from './agent-connection.js';
import type { AgentFilter } from './agent-filter.js';

export interface AgentRecord {
  readonly code: string;
  info: AgentInfo;
  packages: PackageStatus[];
  healthStatus: HealthStatus;
  /** First connection to this controller since the record was created. */
  registerTimeMs: number;
  lastHeartbeatMs: number;
  lastHealthCheckMs: number;
  connection: AgentConnection | null;
  /** When it went offline; 0 while connected. */
  offlineSinceMs: number;
  /** Its convergence on the platform's desired state, as it last reported (hello, heartbeat, answer). */
  distribution: DistributionStatus | undefined;
}

export interface HelloData {
  info: AgentInfo;
  packages: PackageStatus[];
  healthStatus: HealthStatus;
  distribution?: DistributionStatus | undefined;
}

export interface HeartbeatData {
  packages: PackageStatus[];
  healthStatus: HealthStatus;
  /** Absent = unchanged (an agent that was never given a desired state sends none). */
  distribution?: DistributionStatus | undefined;
}

export interface SweepResult {
  /** Connections silent for longer than offline_after; the caller terminates them. */
  silent: AgentConnection[];
  /** Offline records dropped after offline_retention. */
  expired: number;
}

export interface AgentRegistryOptions {
  controllerId: string;
  area: string;
  offlineAfterMs: number;
  offlineRetentionMs: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class AgentRegistry {
  private readonly records = new Map<string, AgentRecord>();
  private sortedCodes: string[] | null = null;
  private connected = 0;
  private readonly opts: AgentRegistryOptions;

  constructor(opts: AgentRegistryOptions) {
    this.opts = opts;
  }

  /** Agents listed (connected + retained offline). */
  get size(): number {
    return this.records.size;
  }

  get connectedCount(): number {
    return this.connected;
  }

  get(code: string): AgentRecord | undefined {
    return this.records.get(code);
  }

  /** The live connection of an agent, if it is connected here. */
  connectionOf(code: string): AgentConnection | null {
    return this.records.get(code)?.connection ?? null;
  }

  /**
   * Binds an accepted hello to its record. Returns the connection it replaces (same agent code,
   * older socket) so that the caller closes it with CLOSE_CODES.replaced.
   */
  attach(conn: AgentConnection, hello: HelloData, now = Date.now()): AgentConnection | null {
    let rec = this.records.get(conn.code);
    let replaced: AgentConnection | null = null;
    if (!rec) {
      rec = {
        code: conn.code,
        info: hello.info,
        packages: hello.packages,
        healthStatus: hello.healthStatus,
        registerTimeMs: now,
        lastHeartbeatMs: now,
        lastHealthCheckMs: now,
        connection: conn,
        offlineSinceMs: 0,
        distribution: hello.distribution,
      };
      this.records.set(conn.code, rec);
      this.sortedCodes = null;
      this.connected++;
      return null;
    }
    if (rec.connection && rec.connection !== conn) replaced = rec.connection;
    else if (!rec.connection) this.connected++;
    rec.info = hello.info;
    rec.packages = hello.packages;
    rec.healthStatus = hello.healthStatus;
    rec.lastHeartbeatMs = now;
    rec.lastHealthCheckMs = now;
    rec.connection = conn;
    rec.offlineSinceMs = 0;
    // A hello states the agent's whole state: no distribution in it means it holds none now.
    rec.distribution = hello.distribution;
    return replaced;
  }

  /** Records a heartbeat; ignored unless `conn` is the agent's current connection. */
  heartbeat(conn: AgentConnection, hb: HeartbeatData, now = Date.now()): boolean {
    const rec = this.records.get(conn.code);
    if (!rec || rec.connection !== conn) return false;
    rec.packages = hb.packages;
    rec.healthStatus = hb.healthStatus;
    if (hb.distribution !== undefined) rec.distribution = hb.distribution;
    rec.lastHeartbeatMs = now;
    rec.lastHealthCheckMs = now;
    return true;
  }

  /** Records the distribution status an agent answered (desired_state / distribution requests). */
  updateDistribution(code: string, status: DistributionStatus): void {
    const rec = this.records.get(code);
    if (rec) rec.distribution = status;
  }

  /** Marks the agent offline if `conn` is still its current connection (a replaced socket closing changes nothing). */
  detach(conn: AgentConnection, now = Date.now()): boolean {
    const rec = this.records.get(conn.code);
    if (!rec || rec.connection !== conn) return false;
    rec.connection = null;
    rec.offlineSinceMs = now;
    this.connected--;
    return true;
  }

  /** Updates the package list from a fresh `packages` answer. */
  updatePackages(code: string, packages: PackageStatus[]): void {
    const rec = this.records.get(code);
    if (rec) rec.packages = packages;
  }

  /** One pass over all records: finds silent connections and drops expired offline records. */
  sweep(now = Date.now()): SweepResult {
    const silent: AgentConnection[] = [];
    let expired = 0;
    for (const [code, rec] of this.records) {
      if (rec.connection) {
        if (now - rec.connection.lastSeenMs > this.opts.offlineAfterMs) silent.push(rec.connection);
      } else if (now - rec.offlineSinceMs > this.opts.offlineRetentionMs) {
        this.records.delete(code);
        expired++;
      }
    }
    if (expired > 0) this.sortedCodes = null;
    return { silent, expired };
  }

  /** Every agent listed here, in the wire shape, ordered by agent code. */
  all(): Agent[] {
    this.sortedCodes ??= [...this.records.keys()].sort();
    const out: Agent[] = [];
    for (const code of this.sortedCodes) {
      const rec = this.records.get(code);
      if (rec) out.push(this.toAgent(rec));
    }
    return out;
  }

  /** Every live connection (for shutdown). */
  connections(): AgentConnection[] {
    const out: AgentConnection[] = [];
    for (const rec of this.records.values()) if (rec.connection) out.push(rec.connection);
    return out;
  }

  /** Records matching the filter (Go's semantics, agent-filter.ts), ordered by agent code; `total` before paging. */
  list(filter: AgentFilter, page: number, pageSize: number): { agents: Agent[]; total: number } {
    this.sortedCodes ??= [...this.records.keys()].sort();
    const start = (page - 1) * pageSize;
    if (filter.empty) {
      // Unfiltered (the common case): the page is a slice, whatever the fleet size.
      const agents: Agent[] = [];
      for (const code of this.sortedCodes.slice(start, start + pageSize)) {
        const rec = this.records.get(code);
        if (rec) agents.push(this.toAgent(rec));
      }
      return { agents, total: this.sortedCodes.length };
    }
    const agents: Agent[] = [];
    let total = 0;
    for (const code of this.sortedCodes) {
      const rec = this.records.get(code);
      if (!rec || !filter.matches((k) => filterValue(rec, k))) continue;
      if (total >= start && agents.length < pageSize) agents.push(this.toAgent(rec));
      total++;
    }
    return { agents, total };
  }

  /** The wire shape (SYSTEM.md §2 Agent). */
  toAgent(rec: AgentRecord): Agent {
    const i = rec.info;
    return {
      id: rec.code,
      agent_code: rec.code,
      area_id: i.area,
      address: i.address,
      hostname: i.hostname,
      status: rec.connection ? 'online' : 'offline',
      labels: i.labels,
      version: i.version,
      last_heartbeat: iso(rec.lastHeartbeatMs),
      register_time: iso(rec.registerTimeMs),
      services: rec.packages,
      // Last known health, even when offline: status says it is offline, this says how it was.
      health_status: rec.healthStatus,
      last_health_check: iso(rec.lastHealthCheckMs),
      zone: i.zone,
      mode: i.mode,
      group: i.group,
      deployment: i.deployment,
      os: i.os,
      arch: i.arch,
      controller_id: this.opts.controllerId,
      ...(rec.distribution !== undefined ? { distribution: rec.distribution } : {}),
    };
  }
}

function filterValue(rec: AgentRecord, key: AgentFilterKey): string | undefined {
  switch (key) {
    case 'id':
      return rec.code;
    case 'status':
      return rec.connection ? 'online' : 'offline';
    case 'area':
      return rec.info.area;
    default:
      return rec.info[key];
  }
}
