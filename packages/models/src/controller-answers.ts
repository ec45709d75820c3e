/**
 * What a controller answers on the guide's read routes, in both directions:
 *
 * - **Answers** (`*AnswerSchema`, `to*Answer`): an Opsplane controller answers in the Go
 *   controller's shape (go-shapes.ts: same keys, types and units) with Opsplane's own fields
 *   beside them — none of Go's keys renamed or retyped. The agent↔controller protocol keeps
 *   Opsplane's shapes (health.ts, metrics.ts); the controller converts at its HTTP edge.
 * - **Readers** (`*ReadSchema`): what the platform library parses a controller's answer with.
 *   They accept an Opsplane controller's answer (Go keys plus Opsplane's), a Go controller's
 *   (Go keys only, any `omitempty` field absent) and the shape Opsplane controllers answered
 *   before (Opsplane keys only), and give Opsplane's typed view (AgentHealth, SystemMetrics…):
 *   Opsplane's fields when present (byte-exact), else derived from Go's (MB → bytes,
 *   `HEALTH_STATUS_*` → healthy…). What Go does not report (uptime, restarts…) stays absent.
 *
 * Field-by-field mapping (Go key ← Opsplane source):
 *
 * | route | Go key | from Opsplane |
 * |---|---|---|
 * | health | `overall_status` | Go's rule over the packages: any unhealthy → `HEALTH_STATUS_UNHEALTHY`, else any degraded → `…_DEGRADED`, else `…_HEALTHY` (Opsplane's own verdict stays in `health_status`) |
 * | health | `total_services`, `healthy`, `unhealthy`, `degraded`, `unknown` | counts of the packages' statuses |
 * | health | `services[]` | one ServiceHealth answer per package, sorted by name |
 * | health/{pkg} | `package`, `status` (0 unknown, 1 healthy, 2 unhealthy, 3 degraded), `last_check{seconds,nanos}`, `message`, `details[]` | `name`, `status`, `checked_at`, `message`; one detail with `check_type`, `response_time_ms` = `latency_ms` |
 * | metrics/system | `cpu.usage`, `cpu.cores` | `cpu_percent`, `cpu_count` |
 * | metrics/system | `memory.total`, `memory.used` (MB, integer), `memory.usage` (%) | `memory.total_bytes`, `memory.used_bytes` ÷ 1048576 floored, `memory.used_percent` |
 * | metrics/system | `disk.total`, `disk.used` (MB), `disk.usage` (%) | the disk mounted at `/` (else all disks summed) |
 * | metrics/system | `network.interfaces[]` | `network.interfaces`, else one `total` entry with `network.rx_bytes`/`tx_bytes` |
 * | metrics/system | `load.1min`, `load.5min`, `load.15min` | `load_average.load1/5/15` (always present; Go leaves `load` out when all are 0) |
 * | metrics/system | `timestamp` (RFC 3339, seconds) | `collected_at` |
 * | metrics/services | `services{pkg}.cpu.usage` (%), `.memory.usage` (MB, float), `.memory.usage_percent` | `cpu_percent`, `rss_bytes` ÷ 1048576, `memory_percent` when known |
 * | metrics/services?package= | top-level `cpu`, `memory` of that package | as above |
 * | packages | `packages[].name`, `version`, `is_running`, `duration` (ns) — and the Go controller's own `package`, `isRunning`, `running_duration` (s) | PackageStatus |
 */
import { z } from 'zod';
import {
  HealthStatusSchema,
  PackageStatusSchema,
  type HealthStatus,
  type PackageStatus,
  type AgentPackagesResponse,
} from './agent.js';
import {
  HealthCheckTypeSchema,
  overallHealth,
  type AgentHealth,
  type HealthCheckType,
  type ServiceHealth,
} from './health.js';
import {
  DiskUsageSchema,
  NetworkInterfaceSchema,
  type ServiceMetric,
  type ServiceMetrics,
  type SystemMetrics,
} from './metrics.js';
import {
  GO_HEALTH_STATUS_NAMES,
  GoHealthStatusDetailSchema,
  GoHealthStatusNumberSchema,
  GoNetworkInterfaceSchema,
  GoTimestampSchema,
  type GoHealthStatusName,
  type GoTimestamp,
} from './go-shapes.js';
import { nowTimestamp, TimestampSchema } from './time.js';

export const MIB = 1024 * 1024;

// ------------------------------------------------------------------------------ status and time helpers

const GO_NUMBER: Record<HealthStatus, number> = { unknown: 0, healthy: 1, unhealthy: 2, degraded: 3 };
const FROM_GO_NUMBER: readonly HealthStatus[] = ['unknown', 'healthy', 'unhealthy', 'degraded'];

/** Opsplane's health status as `pb.HealthStatus`'s number. */
export function goHealthNumber(s: HealthStatus): number {
  return GO_NUMBER[s];
}

/** Opsplane's health status as `pb.HealthStatus`'s name. */
export function goHealthName(s: HealthStatus): GoHealthStatusName {
  return GO_HEALTH_STATUS_NAMES[GO_NUMBER[s]] as GoHealthStatusName;
}

/** Any spelling of a health status (a pb number, `HEALTH_STATUS_*`, `healthy`…); unknown otherwise. */
export function healthFromGo(v: unknown): HealthStatus {
  if (typeof v === 'number') return FROM_GO_NUMBER[v] ?? 'unknown';
  if (typeof v !== 'string') return 'unknown';
  const s = v
    .trim()
    .toLowerCase()
    .replace(/^health_status_/, '');
  return HealthStatusSchema.safeParse(s).success ? (s as HealthStatus) : 'unknown';
}

/** Go's rule for `overall_status` (GetAgentOverallHealth): unhealthy wins, then degraded, else healthy. */
export function goOverallStatus(statuses: readonly HealthStatus[]): GoHealthStatusName {
  if (statuses.includes('unhealthy')) return 'HEALTH_STATUS_UNHEALTHY';
  if (statuses.includes('degraded')) return 'HEALTH_STATUS_DEGRADED';
  return 'HEALTH_STATUS_HEALTHY';
}

/** An RFC 3339 timestamp as a protobuf Timestamp `{seconds, nanos}` (nanosecond digits kept). */
export function toGoTimestamp(ts: string): GoTimestamp {
  const fraction = /\.(\d{1,9})/.exec(ts)?.[1] ?? '';
  const ms = Date.parse(ts.replace(/\.\d+/, ''));
  return { seconds: Math.floor(ms / 1000), nanos: Number(fraction.padEnd(9, '0')) };
}

/** A protobuf Timestamp as RFC 3339 (UTC, nanosecond digits as needed); undefined when absent or zero. */
export function fromGoTimestamp(ts: GoTimestamp | null | undefined): string | undefined {
  if (!ts || (!ts.seconds && !ts.nanos)) return undefined;
  const base = new Date((ts.seconds ?? 0) * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  const nanos = ts.nanos ?? 0;
  return nanos ? `${base}.${String(nanos).padStart(9, '0').replace(/0+$/, '')}Z` : `${base}Z`;
}

/** Go's `time.RFC3339` rendering of a timestamp: to the second, UTC. */
export function toGoRfc3339(ts: string): string {
  const ms = Date.parse(ts);
  return new Date(Number.isFinite(ms) ? ms : Date.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const pct = (part: number, whole: number) => (whole > 0 ? Math.round((10_000 * part) / whole) / 100 : 0);
const mb = (bytes: number) => Math.floor(bytes / MIB);

// ------------------------------------------------------------------------------ answers: health

const ServiceHealthAnswerShape = {
  // Go's keys (pb.ServiceHealth).
  package: z.string(),
  status: GoHealthStatusNumberSchema.describe(
    'pb.HealthStatus number: 0 unknown, 1 healthy, 2 unhealthy, 3 degraded',
  ),
  last_check: GoTimestampSchema.optional(),
  message: z.string(),
  details: z.array(GoHealthStatusDetailSchema),
  // Opsplane's.
  name: z.string(),
  health_status: HealthStatusSchema,
  check_type: HealthCheckTypeSchema.optional(),
  checked_at: TimestampSchema.optional(),
  latency_ms: z.number().nonnegative().optional(),
  consecutive_failures: z.number().int().nonnegative().optional(),
};

/** GET /agents/{id}/health/{package} of an Opsplane controller. */
export const ServiceHealthAnswerSchema = z.object(ServiceHealthAnswerShape);
export type ServiceHealthAnswer = z.infer<typeof ServiceHealthAnswerSchema>;

/** GET /agents/{id}/health of an Opsplane controller. */
export const AgentHealthAnswerSchema = z.object({
  overall_status: z.enum(GO_HEALTH_STATUS_NAMES),
  total_services: z.number().int().nonnegative(),
  healthy: z.number().int().nonnegative(),
  unhealthy: z.number().int().nonnegative(),
  degraded: z.number().int().nonnegative(),
  unknown: z.number().int().nonnegative(),
  services: z.array(ServiceHealthAnswerSchema),
  agent_id: z.string(),
  health_status: HealthStatusSchema.describe("Opsplane's verdict: no checks → unknown, a mix → degraded"),
  checked_at: TimestampSchema,
});
export type AgentHealthAnswer = z.infer<typeof AgentHealthAnswerSchema>;

export function toServiceHealthAnswer(s: ServiceHealth): ServiceHealthAnswer {
  const status = goHealthNumber(s.status);
  const lastCheck = s.checked_at ? toGoTimestamp(s.checked_at) : undefined;
  return {
    package: s.name,
    status,
    ...(lastCheck ? { last_check: lastCheck } : {}),
    message: s.message,
    details: [
      {
        status,
        message: s.message,
        ...(lastCheck ? { last_check: lastCheck } : {}),
        check_type: s.check_type ?? '',
        response_time_ms: Math.round(s.latency_ms ?? 0),
        ...(s.status === 'unhealthy' && s.message ? { error: s.message } : {}),
      },
    ],
    name: s.name,
    health_status: s.status,
    ...(s.check_type !== undefined ? { check_type: s.check_type } : {}),
    ...(s.checked_at !== undefined ? { checked_at: s.checked_at } : {}),
    ...(s.latency_ms !== undefined ? { latency_ms: s.latency_ms } : {}),
    ...(s.consecutive_failures !== undefined ? { consecutive_failures: s.consecutive_failures } : {}),
  };
}

export function toAgentHealthAnswer(h: AgentHealth): AgentHealthAnswer {
  const services = Object.values(h.services)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(toServiceHealthAnswer);
  const count = (s: HealthStatus) => services.filter((x) => x.health_status === s).length;
  return {
    overall_status: goOverallStatus(services.map((s) => s.health_status)),
    total_services: services.length,
    healthy: count('healthy'),
    unhealthy: count('unhealthy'),
    degraded: count('degraded'),
    unknown: count('unknown'),
    services,
    agent_id: h.agent_id,
    health_status: h.overall_status,
    checked_at: h.checked_at,
  };
}

// ------------------------------------------------------------------------------ answers: metrics

/** GET /agents/{id}/metrics/system of an Opsplane controller: Go's keys, Opsplane's beside them. */
export const SystemMetricsAnswerSchema = z.object({
  cpu: z.object({ usage: z.number(), cores: z.number().int().positive().optional() }),
  memory: z.object({
    total: z.number().int().describe('MB'),
    used: z.number().int().describe('MB'),
    usage: z.number().describe('percent'),
    total_bytes: z.number().nonnegative(),
    used_bytes: z.number().nonnegative(),
    available_bytes: z.number().nonnegative().optional(),
    used_percent: z.number().nonnegative().optional(),
  }),
  disk: z.object({
    total: z.number().int().describe('MB'),
    used: z.number().int().describe('MB'),
    usage: z.number().describe('percent'),
  }),
  network: z.object({
    interfaces: z.array(GoNetworkInterfaceSchema),
    rx_bytes: z.number().nonnegative(),
    tx_bytes: z.number().nonnegative(),
  }),
  load: z.object({ '1min': z.number(), '5min': z.number(), '15min': z.number() }),
  timestamp: z.string().describe("RFC 3339 to the second (Go's time.RFC3339)"),
  agent_id: z.string(),
  cpu_percent: z.number().nonnegative(),
  cpu_count: z.number().int().nonnegative().optional(),
  load_average: z.object({ load1: z.number(), load5: z.number(), load15: z.number() }),
  disks: z.array(DiskUsageSchema),
  uptime_seconds: z.number().nonnegative().optional(),
  collected_at: TimestampSchema,
});
export type SystemMetricsAnswer = z.infer<typeof SystemMetricsAnswerSchema>;

export function toSystemMetricsAnswer(m: SystemMetrics): SystemMetricsAnswer {
  const root = m.disks.find((d) => d.mount === '/');
  const disks = root ? [root] : m.disks;
  const diskTotal = disks.reduce((n, d) => n + d.total_bytes, 0);
  const diskUsed = disks.reduce((n, d) => n + d.used_bytes, 0);
  const { total_bytes: memTotal, used_bytes: memUsed } = m.memory;
  const interfaces = m.network.interfaces?.length
    ? m.network.interfaces.map((i) => ({ name: i.name, rx_bytes: i.rx_bytes, tx_bytes: i.tx_bytes }))
    : [{ name: 'total', rx_bytes: m.network.rx_bytes, tx_bytes: m.network.tx_bytes }];
  return {
    cpu: { usage: m.cpu_percent, ...(m.cpu_count ? { cores: m.cpu_count } : {}) },
    memory: {
      total: mb(memTotal),
      used: mb(memUsed),
      usage: m.memory.used_percent ?? pct(memUsed, memTotal),
      ...m.memory,
    },
    disk: {
      total: mb(diskTotal),
      used: mb(diskUsed),
      usage: root?.used_percent ?? pct(diskUsed, diskTotal),
    },
    network: { interfaces, rx_bytes: m.network.rx_bytes, tx_bytes: m.network.tx_bytes },
    load: { '1min': m.load_average.load1, '5min': m.load_average.load5, '15min': m.load_average.load15 },
    timestamp: toGoRfc3339(m.collected_at),
    agent_id: m.agent_id,
    cpu_percent: m.cpu_percent,
    ...(m.cpu_count !== undefined ? { cpu_count: m.cpu_count } : {}),
    load_average: m.load_average,
    disks: m.disks,
    ...(m.uptime_seconds !== undefined ? { uptime_seconds: m.uptime_seconds } : {}),
    collected_at: m.collected_at,
  };
}

const ServiceMetricAnswerSchema = z.object({
  cpu: z.object({ usage: z.number().describe('percent') }),
  memory: z.object({
    usage: z.number().describe('MB (a float, as Go sends it)'),
    usage_percent: z.number().optional(),
  }),
  name: z.string(),
  is_running: z.boolean().optional(),
  pid: z.number().int().nonnegative().optional(),
  cpu_percent: z.number().nonnegative(),
  rss_bytes: z.number().nonnegative(),
  memory_percent: z.number().nonnegative().optional(),
  restarts: z.number().int().nonnegative().optional(),
  uptime_seconds: z.number().nonnegative().optional(),
});

/** GET /agents/{id}/metrics/services of an Opsplane controller (`cpu`/`memory` on top only with `package`). */
export const ServiceMetricsAnswerSchema = z.object({
  services: z.record(z.string(), ServiceMetricAnswerSchema),
  cpu: ServiceMetricAnswerSchema.shape.cpu.optional(),
  memory: ServiceMetricAnswerSchema.shape.memory.optional(),
  agent_id: z.string(),
  collected_at: TimestampSchema,
});
export type ServiceMetricsAnswer = z.infer<typeof ServiceMetricsAnswerSchema>;

function toServiceMetricAnswer(s: ServiceMetric): z.infer<typeof ServiceMetricAnswerSchema> {
  return {
    cpu: { usage: s.cpu_percent },
    memory: {
      usage: s.rss_bytes / MIB,
      ...(s.memory_percent ? { usage_percent: s.memory_percent } : {}),
    },
    ...s,
  };
}

/** `pkg`: the `package` query parameter, whose metrics Go puts at the top level. */
export function toServiceMetricsAnswer(m: ServiceMetrics, pkg?: string): ServiceMetricsAnswer {
  const services: ServiceMetricsAnswer['services'] = {};
  for (const s of m.services) services[s.name] = toServiceMetricAnswer(s);
  const one = pkg ? services[pkg] : undefined;
  return {
    services,
    ...(one ? { cpu: one.cpu, memory: one.memory } : {}),
    agent_id: m.agent_id,
    collected_at: m.collected_at,
  };
}

// ------------------------------------------------------------------------------ answers: packages

/** A package in GET /agents/{id}/packages: PackageStatus (the Go client's keys) plus the Go controller's own PackItem keys. */
export const PackageStatusAnswerSchema = PackageStatusSchema.extend({
  package: z.string(),
  isRunning: z.boolean(),
  running_duration: z.number().int().nonnegative().describe('seconds'),
});
export const AgentPackagesAnswerSchema = z.object({
  agent_id: z.string(),
  packages: z.array(PackageStatusAnswerSchema),
});
export type AgentPackagesAnswer = z.infer<typeof AgentPackagesAnswerSchema>;

export function toPackageStatusAnswer(p: PackageStatus): z.infer<typeof PackageStatusAnswerSchema> {
  return {
    ...p,
    package: p.name,
    isRunning: p.is_running,
    running_duration: Math.floor(p.uptime_seconds ?? p.duration / 1e9),
  };
}

export function toAgentPackagesAnswer(
  agentId: string,
  packages: readonly PackageStatus[],
): AgentPackagesAnswer {
  return { agent_id: agentId, packages: packages.map(toPackageStatusAnswer) };
}

// ------------------------------------------------------------------------------ readers

const num = z.number().finite();
const optNum = num.nullish().transform((v) => v ?? undefined);
const LooseTimestamp = GoTimestampSchema.partial().nullish();
const rfc3339OrUndefined = (v: unknown) => (TimestampSchema.safeParse(v).success ? (v as string) : undefined);

function checkType(v: unknown): HealthCheckType | undefined {
  const r = HealthCheckTypeSchema.safeParse(typeof v === 'string' ? v.toLowerCase() : v);
  return r.success ? r.data : undefined;
}

const ServiceHealthReadObject = z.object({
  name: z.string().optional(),
  package: z.string().optional(),
  status: z.union([z.number(), z.string()]).nullish(),
  health_status: z.string().optional(),
  message: z.string().nullish(),
  check_type: z.string().nullish(),
  checked_at: z.string().nullish(),
  last_check: LooseTimestamp,
  latency_ms: optNum,
  consecutive_failures: optNum,
  details: z
    .array(
      z.object({
        check_type: z.string().nullish(),
        response_time_ms: optNum,
        last_check: LooseTimestamp,
        message: z.string().nullish(),
      }),
    )
    .nullish(),
});

function readServiceHealthObject(
  s: z.infer<typeof ServiceHealthReadObject>,
  fallbackName: string,
): ServiceHealth {
  // An Opsplane answer says all it knows in its own fields; only a Go one needs its details read.
  const d = s.name === undefined && s.health_status === undefined ? s.details?.[0] : undefined;
  const checkedAt =
    rfc3339OrUndefined(s.checked_at) ?? fromGoTimestamp(s.last_check) ?? fromGoTimestamp(d?.last_check);
  const latency = s.latency_ms ?? d?.response_time_ms;
  const ct = checkType(s.check_type) ?? checkType(d?.check_type);
  return {
    name: s.name ?? s.package ?? fallbackName,
    status: healthFromGo(s.health_status ?? s.status),
    message: s.message ?? d?.message ?? '',
    ...(ct ? { check_type: ct } : {}),
    ...(checkedAt ? { checked_at: checkedAt } : {}),
    ...(latency !== undefined && latency >= 0 ? { latency_ms: latency } : {}),
    ...(s.consecutive_failures !== undefined && s.consecutive_failures >= 0
      ? { consecutive_failures: Math.round(s.consecutive_failures) }
      : {}),
  };
}

/** GET /agents/{id}/health/{package} of any controller → ServiceHealth (`name` '' when the answer has none). */
export const ServiceHealthReadSchema = ServiceHealthReadObject.transform((s) =>
  readServiceHealthObject(s, ''),
);

/** GET /agents/{id}/health of any controller → AgentHealth (`agent_id` '' when the answer has none). */
export const AgentHealthReadSchema = z
  .object({
    agent_id: z.string().optional(),
    overall_status: z.string().nullish(),
    health_status: z.string().optional(),
    services: z
      .union([z.array(ServiceHealthReadObject), z.record(z.string(), ServiceHealthReadObject)])
      .nullish(),
    checked_at: z.string().nullish(),
  })
  .transform((h): AgentHealth => {
    const services: Record<string, ServiceHealth> = {};
    if (Array.isArray(h.services)) {
      h.services.forEach((s, i) => {
        const v = readServiceHealthObject(s, `service-${i + 1}`);
        services[v.name] = v;
      });
    } else if (h.services) {
      for (const [k, s] of Object.entries(h.services)) services[k] = readServiceHealthObject(s, k);
    }
    const statuses = Object.values(services).map((s) => s.status);
    const verdict = h.health_status ?? h.overall_status;
    return {
      agent_id: h.agent_id ?? '',
      overall_status: verdict ? healthFromGo(verdict) : overallHealth(statuses),
      services,
      checked_at: rfc3339OrUndefined(h.checked_at) ?? nowTimestamp(),
    };
  });

const LooseInterface = z.object({ name: z.string().default(''), rx_bytes: optNum, tx_bytes: optNum });

/** GET /agents/{id}/metrics/system of any controller → SystemMetrics (`agent_id` '' when absent). */
export const SystemMetricsReadSchema = z
  .object({
    agent_id: z.string().optional(),
    // Opsplane's.
    cpu_percent: optNum,
    cpu_count: optNum,
    load_average: z.object({ load1: num, load5: num, load15: num }).nullish(),
    disks: z.array(DiskUsageSchema).nullish(),
    uptime_seconds: optNum,
    collected_at: z.string().nullish(),
    // Shared objects, with either side's keys.
    memory: z
      .object({
        total_bytes: optNum,
        used_bytes: optNum,
        available_bytes: optNum,
        used_percent: optNum,
        total: optNum,
        used: optNum,
        usage: optNum,
      })
      .nullish(),
    network: z
      .object({ rx_bytes: optNum, tx_bytes: optNum, interfaces: z.array(LooseInterface).nullish() })
      .nullish(),
    // Go's.
    cpu: z.object({ usage: optNum, cores: optNum }).nullish(),
    disk: z.object({ total: optNum, used: optNum, usage: optNum }).nullish(),
    load: z.object({ '1min': optNum, '5min': optNum, '15min': optNum }).nullish(),
    timestamp: z.string().nullish(),
  })
  .transform((m): SystemMetrics => {
    const mem: Partial<NonNullable<typeof m.memory>> = m.memory ?? {};
    const ifaces = (m.network?.interfaces ?? []).map((i) => ({
      name: i.name,
      rx_bytes: Math.max(0, i.rx_bytes ?? 0),
      tx_bytes: Math.max(0, i.tx_bytes ?? 0),
    }));
    const sum = (k: 'rx_bytes' | 'tx_bytes') => ifaces.reduce((n, i) => n + i[k], 0);
    // An Opsplane answer's own fields are exact and complete; Go's are read only without them.
    const own = m.cpu_percent !== undefined;
    const cores = own ? m.cpu_count : (m.cpu_count ?? m.cpu?.cores);
    const memPercent =
      own || mem.total_bytes !== undefined ? mem.used_percent : (mem.used_percent ?? mem.usage);
    const disks =
      m.disks ??
      (m.disk
        ? [
            {
              mount: '/',
              total_bytes: Math.max(0, (m.disk.total ?? 0) * MIB),
              used_bytes: Math.max(0, (m.disk.used ?? 0) * MIB),
              ...(m.disk.usage !== undefined && m.disk.usage >= 0 ? { used_percent: m.disk.usage } : {}),
            },
          ]
        : []);
    return {
      agent_id: m.agent_id ?? '',
      cpu_percent: Math.max(0, m.cpu_percent ?? m.cpu?.usage ?? 0),
      ...(cores !== undefined && cores >= 0 ? { cpu_count: Math.round(cores) } : {}),
      load_average: m.load_average ?? {
        load1: m.load?.['1min'] ?? 0,
        load5: m.load?.['5min'] ?? 0,
        load15: m.load?.['15min'] ?? 0,
      },
      memory: {
        total_bytes: Math.max(0, mem.total_bytes ?? (mem.total ?? 0) * MIB),
        used_bytes: Math.max(0, mem.used_bytes ?? (mem.used ?? 0) * MIB),
        ...(mem.available_bytes !== undefined ? { available_bytes: Math.max(0, mem.available_bytes) } : {}),
        ...(memPercent !== undefined && memPercent >= 0 ? { used_percent: memPercent } : {}),
      },
      disks,
      network: {
        rx_bytes: Math.max(0, m.network?.rx_bytes ?? sum('rx_bytes')),
        tx_bytes: Math.max(0, m.network?.tx_bytes ?? sum('tx_bytes')),
        ...(ifaces.length ? { interfaces: ifaces.map((i) => NetworkInterfaceSchema.parse(i)) } : {}),
      },
      ...(m.uptime_seconds !== undefined && m.uptime_seconds >= 0
        ? { uptime_seconds: m.uptime_seconds }
        : {}),
      collected_at: rfc3339OrUndefined(m.collected_at) ?? rfc3339OrUndefined(m.timestamp) ?? nowTimestamp(),
    };
  });

const ServiceMetricReadObject = z.object({
  name: z.string().optional(),
  is_running: z.boolean().nullish(),
  pid: optNum,
  cpu_percent: optNum,
  rss_bytes: optNum,
  memory_percent: optNum,
  restarts: optNum,
  uptime_seconds: optNum,
  cpu: z.object({ usage: optNum }).nullish(),
  memory: z.object({ usage: optNum, usage_percent: optNum }).nullish(),
});

function readServiceMetric(s: z.infer<typeof ServiceMetricReadObject>, name: string): ServiceMetric {
  const memPercent = s.memory_percent ?? s.memory?.usage_percent;
  const nn = (v: number | undefined) => (v !== undefined && v >= 0 ? v : undefined);
  const pid = nn(s.pid);
  const restarts = nn(s.restarts);
  const uptime = nn(s.uptime_seconds);
  return {
    name: s.name ?? name,
    ...(typeof s.is_running === 'boolean' ? { is_running: s.is_running } : {}),
    ...(pid !== undefined ? { pid: Math.round(pid) } : {}),
    cpu_percent: Math.max(0, s.cpu_percent ?? s.cpu?.usage ?? 0),
    rss_bytes: Math.max(0, s.rss_bytes ?? Math.round((s.memory?.usage ?? 0) * MIB)),
    ...(memPercent !== undefined && memPercent > 0 ? { memory_percent: memPercent } : {}),
    ...(restarts !== undefined ? { restarts: Math.round(restarts) } : {}),
    ...(uptime !== undefined ? { uptime_seconds: uptime } : {}),
  };
}

/**
 * GET /agents/{id}/metrics/services of any controller → ServiceMetrics. `pkg` is the `package`
 * asked for: a Go controller then answers only that package's `{cpu, memory}`.
 */
export function serviceMetricsReadSchema(pkg?: string) {
  return ServiceMetricReadObject.extend({
    agent_id: z.string().optional(),
    collected_at: z.string().nullish(),
    services: z
      .union([z.array(ServiceMetricReadObject), z.record(z.string(), ServiceMetricReadObject)])
      .nullish(),
  }).transform((m): ServiceMetrics => {
    let services: ServiceMetric[];
    if (Array.isArray(m.services))
      services = m.services.map((s, i) => readServiceMetric(s, `service-${i + 1}`));
    else if (m.services) services = Object.entries(m.services).map(([k, s]) => readServiceMetric(s, k));
    else if (pkg && (m.cpu || m.memory)) services = [readServiceMetric(m, pkg)];
    else services = [];
    services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return {
      agent_id: m.agent_id ?? '',
      services: pkg ? services.filter((s) => s.name === pkg) : services,
      collected_at: rfc3339OrUndefined(m.collected_at) ?? nowTimestamp(),
    };
  });
}

/** A package of any controller: PackageStatus keys, or the Go controller's PackItem keys. */
export const PackageStatusReadSchema = z.preprocess((raw) => {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const p = raw as Record<string, unknown>;
  if (typeof p.name === 'string' && typeof p.is_running === 'boolean') return p;
  const seconds = typeof p.running_duration === 'number' ? p.running_duration : undefined;
  return {
    name: p.name ?? p.package,
    version: p.version ?? '',
    is_running: p.is_running ?? p.isRunning ?? false,
    duration: p.duration ?? (seconds !== undefined ? seconds * 1e9 : 0),
    ...(seconds !== undefined && seconds >= 0 ? { uptime_seconds: seconds } : {}),
  };
}, PackageStatusSchema);

/** GET /agents/{id}/packages of any controller (`agent_id` '' when absent; Go may send null packages). */
export const AgentPackagesReadSchema = z
  .object({
    agent_id: z.string().optional(),
    packages: z.array(PackageStatusReadSchema).nullish(),
  })
  .transform((r): AgentPackagesResponse => ({ agent_id: r.agent_id ?? '', packages: r.packages ?? [] }));
