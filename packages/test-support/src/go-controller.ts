/**
 * A Go-shaped controller for tests: a small HTTP server that answers the guide's routes exactly
 * as the Go controller of netxops/unicontroller does, and its etcd registration as that
 * controller writes it. Derived from reading the Go source (not copied from it):
 *
 * - routes and answers: `controller/pkg/controller/api/agent_api.go` (HandleGetAgent,
 *   HandleGetAgentPackages, HandleGetAgentHealth, HandleGetServiceHealth,
 *   convertSystemMetricsToJSON, convertServiceMetricsToJSON/ListToJSON, the batch handlers) and
 *   `api.go` (HandleListAgents: default pageSize 10, unknown parameters ignored);
 * - list filters: `registry_manager.go` listAgents (address/hostname `$regex` with option i,
 *   the rest equality);
 * - batch semantics: `batch_operator.go` (one result per agent × package; with no packages,
 *   an unreachable agent is skipped; configs per agent; `configs: null` accepted);
 * - JSON: encoding/json of `models.Agent`, `models.BatchOperationResult`, the pb messages
 *   (`pb.PackItem`, `pb.ServiceHealth` with the enum as a number and Timestamps as
 *   `{seconds,nanos}`, every field `omitempty`), map keys sorted, a trailing newline, and
 *   `http.Error` text bodies (text/plain) for failures;
 * - registration: `controller.go` registerToUpstreamEtcd (`controllers/<function_area>/<id>`,
 *   value `{id,address,function_area,start_time,version,status,last_heartbeat}`, a fresh 60 s
 *   lease per put, re-put every 30 s).
 *
 * Test code only; the timestamps it writes carry a +08:00 offset and nanoseconds, as Go's do.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EtcdHandle } from './etcd.js';

export interface GoPackageFixture {
  name: string;
  version?: string;
  running?: boolean;
  /** Seconds since start (pb.PackItem.running_duration; models.PackageStatus.duration is ns). */
  seconds?: number;
  /** pb.HealthStatus number: 0 unknown, 1 healthy, 2 unhealthy, 3 degraded. Default 1. */
  health?: 0 | 1 | 2 | 3;
  checkType?: string;
  responseTimeMs?: number;
  cpu?: number;
  memoryBytes?: number;
  memoryPercent?: number;
}

export interface GoAgentFixture {
  id: string;
  hostname?: string;
  address?: string;
  status?: 'online' | 'offline' | 'unknown';
  version?: string;
  packages?: GoPackageFixture[];
  /** Go omits health_status/last_health_check (omitempty) unless the agent was health-checked. */
  healthStatus?: string;
  lastHealthCheck?: string;
  /** Host metrics (bytes; the handler converts to MB). */
  system?: Partial<{
    cpuUsage: number;
    cpuCores: number;
    memoryTotal: number;
    memoryFree: number;
    memoryUsage: number;
    diskTotal: number;
    diskFree: number;
    diskUsage: number;
    load: [number, number, number];
  }>;
}

export interface GoController {
  readonly id: string;
  readonly area: string;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** 127.0.0.1:<port> — what the registration's `address` holds (see `registerGoController`). */
  readonly address: string;
  /** Every request received: method and URL (path and query). */
  readonly requests: { method: string; url: string }[];
  /** Batch bodies received, by path. */
  readonly batches: { path: string; body: unknown }[];
  agents: GoAgentFixture[];
  /** Requests whose path (without query) equals `path`. */
  count(path: string): number;
  stop(): Promise<void>;
}

/** A Go time.Time as encoding/json writes it: RFC 3339 with nanoseconds, here at +08:00. */
export function goTime(ms: number): string {
  const shifted = new Date(ms + 8 * 3600_000).toISOString().replace(/\.\d{3}Z$/, '');
  // The milliseconds, then sub-millisecond digits as a Go clock has them.
  return `${shifted}.${String(((ms % 1000) + 1000) % 1000).padStart(3, '0')}456789+08:00`;
}

/** Go's time.RFC3339 (seconds, +08:00). */
function goRfc3339(ms: number): string {
  return `${new Date(ms + 8 * 3600_000).toISOString().replace(/\.\d{3}Z$/, '')}+08:00`;
}

/** encoding/json sorts map keys (struct fields keep their order; the handlers' maps are maps). */
function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  return v;
}

function send(res: ServerResponse, status: number, body: unknown, sorted = false): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(`${JSON.stringify(sorted ? sortKeys(body) : body)}\n`);
}

/** http.Error: text/plain, the message and a newline. */
function httpError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
  res.end(`${message}\n`);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const MIB = 1024 * 1024;

function omitEmpty(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined && v !== '' && v !== 0 && v !== false && v !== null),
  );
}

export async function startGoController(opts: {
  id: string;
  area: string;
  agents?: GoAgentFixture[];
  /** Fixed time of the fixture's timestamps (default: now at start). */
  nowMs?: number;
}): Promise<GoController> {
  const startedMs = opts.nowMs ?? Date.now();
  const requests: { method: string; url: string }[] = [];
  const batches: { path: string; body: unknown }[] = [];
  const state = { agents: opts.agents ?? [] };
  const find = (id: string) => state.agents.find((a) => a.id === id);
  const ts = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 });

  // models.Agent through encoding/json.
  const agentJson = (a: GoAgentFixture) => ({
    id: a.id,
    agent_code: a.id,
    area_id: opts.area,
    address: a.address ?? '',
    hostname: a.hostname ?? '',
    status: a.status ?? 'online',
    labels: null,
    version: a.version ?? '',
    last_heartbeat: goTime(startedMs),
    register_time: goTime(startedMs - 3600_000),
    services: (a.packages ?? []).map((p) => ({
      name: p.name,
      version: p.version ?? '',
      is_running: p.running ?? true,
      duration: (p.seconds ?? 0) * 1e9,
    })),
    ...(a.healthStatus ? { health_status: a.healthStatus } : {}),
    ...(a.lastHealthCheck ? { last_health_check: a.lastHealthCheck } : {}),
  });

  // pb.ServiceHealth through encoding/json (omitempty everywhere).
  const serviceHealth = (p: GoPackageFixture) => {
    const status = p.health ?? 1;
    const message = status === 1 ? 'ok' : 'check failed';
    const detail = omitEmpty({
      status,
      message,
      last_check: ts(startedMs),
      check_type: p.checkType ?? 'process',
      response_time_ms: p.responseTimeMs ?? 0,
      error: status === 2 ? 'connection refused' : undefined,
    });
    return omitEmpty({ package: p.name, status, last_check: ts(startedMs), message, details: [detail] });
  };

  const serviceMetric = (p: GoPackageFixture) => ({
    cpu: { usage: p.cpu ?? 0 },
    memory: {
      usage: (p.memoryBytes ?? 0) / MIB,
      ...(p.memoryPercent ? { usage_percent: p.memoryPercent } : {}),
    },
  });

  const listAgents = (q: URLSearchParams) => {
    let list = state.agents.map(agentJson);
    for (const key of [
      'id',
      'status',
      'address',
      'hostname',
      'area',
      'zone',
      'version',
      'mode',
      'group',
      'deployment',
    ]) {
      const v = q.get(key);
      if (!v) continue;
      if (key === 'address' || key === 'hostname') {
        const re = new RegExp(v, 'i');
        list = list.filter((a) => re.test(a[key]));
      } else {
        const field = key === 'area' ? 'area' : key;
        list = list.filter((a) => (a as Record<string, unknown>)[field] === v);
      }
    }
    let page = Number.parseInt(q.get('page') ?? '', 10);
    if (!(page >= 1)) page = 1;
    let pageSize = Number.parseInt(q.get('pageSize') ?? '', 10);
    if (!(pageSize >= 1)) pageSize = 10;
    const agents = list.slice((page - 1) * pageSize, page * pageSize);
    return { agents: agents.length ? agents : null, total: list.length, page, pageSize };
  };

  const batch = (path: string, body: Record<string, unknown>) => {
    const t0 = Date.now();
    const agents = (body.agents as string[] | null) ?? [];
    const results: Record<string, unknown>[] = [];
    const unreachable = (id: string) => `failed to get agent connection: agent with ID ${id} not found`;
    if (path.endsWith('/configs')) {
      const pkg = String(body.package ?? '');
      for (const id of agents) {
        const a = find(id);
        const ok = a !== undefined && (a.status ?? 'online') === 'online';
        results.push({
          agent_code: id,
          package: pkg,
          success: ok,
          message: 'Config updated successfully',
          ...(ok ? {} : { error: `agent ${id} is not online or not found: agent with ID ${id} not found` }),
        });
      }
    } else {
      const action = path.slice(path.lastIndexOf('/') + 1);
      const asked = (body.packages as string[] | null) ?? [];
      for (const id of agents) {
        const a = find(id);
        const names = asked.length ? asked : (a?.packages ?? []).map((p) => p.name);
        // With no packages asked, an agent whose list cannot be had is skipped (generateOperations).
        if (!asked.length && !a) continue;
        for (const pkg of names) {
          const has = a?.packages?.some((p) => p.name === pkg) ?? false;
          const verb = { start: 'Started', stop: 'Stopped', restart: 'Restarted' }[action] ?? action;
          results.push({
            agent_code: id,
            package: pkg,
            success: a !== undefined && has,
            message: `${verb} successfully`,
            ...(a === undefined
              ? { error: unreachable(id) }
              : has
                ? {}
                : { error: `failed to ${action} package: rpc error: package ${pkg} not found` }),
          });
        }
      }
    }
    const success = results.filter((r) => r.success).length;
    return {
      total: results.length,
      success,
      failed: results.length - success,
      results,
      duration_ms: Date.now() - t0,
    };
  };

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/' });
      const path = url.pathname.replace(/\/+$/, '');
      const m =
        /^\/api\/v1\/agents\/([^/]+)(?:\/(packages|health|metrics\/system|metrics\/services)(?:\/([^/]+))?)?$/.exec(
          path,
        );
      if (req.method === 'POST' && /^\/api\/v1\/agents\/batch\/(start|stop|restart|configs)$/.test(path)) {
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(await readBody(req)) as Record<string, unknown>;
        } catch (e) {
          return httpError(res, 400, `Invalid request body: ${(e as Error).message}`);
        }
        batches.push({ path, body });
        return send(res, 200, batch(path, body));
      }
      if (req.method !== 'GET') return httpError(res, 405, 'Method Not Allowed');
      if (path === '/api/v1/status') {
        return send(res, 200, {
          controller_id: opts.id,
          start_time: goTime(startedMs - 7200_000),
          version: '2.3.1',
          function_area: opts.area,
          system_info: { hostname: `${opts.id}-host`, os: 'linux' },
          mongodb_status: 'connected',
          etcd_status: 'connected',
        });
      }
      if (path === '/api/v1/agents') return send(res, 200, listAgents(url.searchParams));
      if (!m) return httpError(res, 404, '404 page not found');
      const [, id = '', sub, pkg] = m;
      const a = find(decodeURIComponent(id));
      switch (sub) {
        case undefined:
          return a
            ? send(res, 200, agentJson(a))
            : httpError(res, 404, `Failed to get agent: agent with ID ${id} not found`);
        case 'packages':
          if (!a) return httpError(res, 500, `Failed to get agent packages: agent with ID ${id} not found`);
          return send(
            res,
            200,
            {
              agent_id: id,
              packages: (a.packages ?? []).map((p) =>
                omitEmpty({
                  package: p.name,
                  isRunning: p.running ?? true,
                  version: p.version ?? '',
                  running_duration: p.seconds ?? 0,
                }),
              ),
            },
            true,
          );
        case 'health': {
          if (!a)
            return httpError(
              res,
              500,
              `Failed to get agent health: failed to list agent health: agent with ID ${id} not found`,
            );
          if (pkg !== undefined) {
            const p = a.packages?.find((x) => x.name === pkg);
            if (!p)
              return httpError(res, 500, `Failed to get service health: rpc error: service ${pkg} not found`);
            return send(res, 200, serviceHealth(p));
          }
          const list = (a.packages ?? []).map(serviceHealth);
          const n = (s: number) => (a.packages ?? []).filter((p) => (p.health ?? 1) === s).length;
          const unhealthy = n(2);
          const degraded = n(3);
          return send(
            res,
            200,
            {
              overall_status:
                unhealthy > 0
                  ? 'HEALTH_STATUS_UNHEALTHY'
                  : degraded > 0
                    ? 'HEALTH_STATUS_DEGRADED'
                    : 'HEALTH_STATUS_HEALTHY',
              total_services: list.length,
              healthy: n(1),
              unhealthy,
              degraded,
              unknown: n(0),
              services: list.length ? list : null,
            },
            true,
          );
        }
        case 'metrics/system': {
          if (!a) return httpError(res, 500, `Failed to get system metrics: agent with ID ${id} not found`);
          const s = a.system ?? {};
          const memTotal = s.memoryTotal ?? 8 * 1024 * MIB;
          const memFree = s.memoryFree ?? 6 * 1024 * MIB;
          const diskTotal = s.diskTotal ?? 100 * 1024 * MIB;
          const diskFree = s.diskFree ?? 40 * 1024 * MIB;
          const load = s.load ?? [0.5, 0.4, 0.3];
          return send(
            res,
            200,
            {
              cpu: {
                usage: s.cpuUsage ?? 12.5,
                ...((s.cpuCores ?? 4) > 0 ? { cores: s.cpuCores ?? 4 } : {}),
              },
              memory: {
                total: Math.floor(memTotal / MIB),
                used: Math.floor((memTotal - memFree) / MIB),
                usage: s.memoryUsage ?? 25,
              },
              disk: {
                total: Math.floor(diskTotal / MIB),
                used: Math.floor((diskTotal - diskFree) / MIB),
                usage: s.diskUsage ?? 60,
              },
              network: { interfaces: [{ name: 'eth0', rx_bytes: 1000, tx_bytes: 2000 }] },
              ...(load.some((x) => x > 0)
                ? { load: { '1min': load[0], '5min': load[1], '15min': load[2] } }
                : {}),
              timestamp: goRfc3339(startedMs),
            },
            true,
          );
        }
        case 'metrics/services': {
          if (!a) return httpError(res, 500, `Failed to list service metrics: agent with ID ${id} not found`);
          const one = url.searchParams.get('package');
          if (one) {
            const p = a.packages?.find((x) => x.name === one);
            if (!p)
              return httpError(
                res,
                500,
                `Failed to get service metrics: rpc error: service ${one} not found`,
              );
            return send(res, 200, serviceMetric(p), true);
          }
          const runningOnly = url.searchParams.get('running_only') === 'true';
          const services: Record<string, unknown> = {};
          for (const p of a.packages ?? [])
            if (!runningOnly || (p.running ?? true)) services[p.name] = serviceMetric(p);
          return send(res, 200, { services }, true);
        }
        default:
          return httpError(res, 404, '404 page not found');
      }
    })().catch((err: unknown) => httpError(res, 500, String(err)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    id: opts.id,
    area: opts.area,
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    requests,
    batches,
    get agents() {
      return state.agents;
    },
    set agents(v: GoAgentFixture[]) {
      state.agents = v;
    },
    count: (p) => requests.filter((r) => r.url.split('?')[0] === p).length,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface GoRegistration {
  readonly key: string;
  /** The lease the value is bound to now ('' without a lease). */
  readonly leaseId: string;
  /** Puts the value again, as Go does every 30 s: with a fresh lease (when leased) and heartbeat. */
  reput(): Promise<void>;
  /** Deletes the key (and revokes the lease). */
  remove(): Promise<void>;
}

export interface GoRegistrationOptions {
  area: string;
  id: string;
  /** The registered address (Go's default is only `:<port>`). */
  address: string;
  prefix?: string;
  /** Lease TTL in seconds (Go: 60); 0 = a plain put without a lease (`etcdctl put`). */
  leaseTtlSeconds?: number;
  /** How old `last_heartbeat` is at each put (e.g. 45 s: just before Go's next re-put). */
  heartbeatAgeMs?: number;
  /**
   * `controller`: the Go controller's value (function_area, status, last_heartbeat);
   * `platform-info`: the Go platform's ControllerInfo shape (area, no heartbeat).
   */
  shape?: 'controller' | 'platform-info';
  version?: string;
}

/** Writes a Go controller's registration with etcdctl, as `registerToUpstreamEtcd` does. */
export async function registerGoController(
  etcd: EtcdHandle,
  o: GoRegistrationOptions,
): Promise<GoRegistration> {
  const key = `${o.prefix ?? 'controllers/'}${o.area}/${o.id}`;
  const ttl = o.leaseTtlSeconds ?? 60;
  const startMs = Date.now() - 3600_000;
  let leaseId = '';
  const value = () =>
    JSON.stringify(
      (o.shape ?? 'controller') === 'controller'
        ? {
            id: o.id,
            address: o.address,
            function_area: o.area,
            start_time: goTime(startMs),
            version: o.version ?? '2.3.1',
            status: 'online',
            last_heartbeat: goTime(Date.now() - (o.heartbeatAgeMs ?? 0)),
          }
        : {
            id: o.id,
            address: o.address,
            area: o.area,
            start_time: goTime(startMs),
            version: o.version ?? '2.3.1',
          },
    );
  const put = async () => {
    if (ttl > 0) {
      // A fresh lease for every put, as the Go controller grants one each time.
      const out = await etcd.etcdctl(['lease', 'grant', String(ttl)]);
      const m = /lease ([0-9a-f]+) granted/.exec(out);
      if (!m?.[1]) throw new Error(`unexpected etcdctl lease grant output: ${out}`);
      leaseId = m[1];
      await etcd.etcdctl(['put', `--lease=${leaseId}`, key], { input: value() });
    } else {
      await etcd.etcdctl(['put', key], { input: value() });
    }
  };
  await put();
  return {
    key,
    get leaseId() {
      return leaseId;
    },
    reput: put,
    async remove() {
      await etcd.etcdctl(['del', key]);
      if (leaseId) await etcd.etcdctl(['lease', 'revoke', leaseId]).catch(() => '');
    },
  };
}
