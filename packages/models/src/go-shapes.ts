/**
 * The JSON the Go system (netxops/unicontroller, `controller/`) puts on the wire, as zod schemas —
 * written from reading its source, not copied from it:
 *
 * - the controller's handlers in `pkg/controller/api/agent_api.go` and `api.go`
 *   (`HandleListAgents`, `HandleGetAgentHealth` → `HealthMonitor.GetAgentOverallHealth`,
 *   `HandleGetServiceHealth`, `convertSystemMetricsToJSON`, `convertServiceMetricsToJSON`,
 *   `HandleGetAgentPackages`, the batch handlers);
 * - the structs they encode: `pkg/controller/models/agent.go` and `batch.go`, and the protobuf
 *   messages of `pb/health.proto`, `pb/metrics.proto`, `pb/package.proto` — encoded with
 *   `encoding/json`, not protojson, so field names are the generated `json:"…,omitempty"` tags,
 *   enums are their numbers and a `google.protobuf.Timestamp` is `{"seconds","nanos"}`;
 * - the controller's etcd registration in `pkg/controller/controller.go`
 *   (`registerToUpstreamEtcd`) and the Go platform's `ControllerInfo` in
 *   `pkg/platform/etcd/discovery.go`.
 *
 * Keys the Go code always writes are required here; `omitempty` fields and keys its handlers
 * add conditionally (e.g. `cpu.cores` only when > 0, `load` only when a load average is > 0) are
 * optional. Extra keys pass (Opsplane's fields stand beside Go's), so a renamed or retyped Go key
 * fails a parse while an added one does not. Opsplane's controllers are checked against these
 * in the tests; the readers in controller-answers.ts accept them (and more) from Go controllers.
 */
import { z } from 'zod';

// ------------------------------------------------------------------------------ health

/** `pb.HealthStatus` names, indexed by their number (what encoding/json writes). */
export const GO_HEALTH_STATUS_NAMES = [
  'HEALTH_STATUS_UNKNOWN',
  'HEALTH_STATUS_HEALTHY',
  'HEALTH_STATUS_UNHEALTHY',
  'HEALTH_STATUS_DEGRADED',
] as const;
export type GoHealthStatusName = (typeof GO_HEALTH_STATUS_NAMES)[number];

/** `pb.HealthStatus` as encoding/json writes it: its number, 0…3. */
export const GoHealthStatusNumberSchema = z.number().int().min(0).max(3);

/** `*timestamppb.Timestamp` through encoding/json: both fields `omitempty`. */
export const GoTimestampSchema = z.object({
  seconds: z.number().int().optional(),
  nanos: z.number().int().min(0).max(999_999_999).optional(),
});
export type GoTimestamp = z.infer<typeof GoTimestampSchema>;

/** `pb.HealthStatusDetail`. */
export const GoHealthStatusDetailSchema = z.object({
  status: GoHealthStatusNumberSchema.optional(),
  message: z.string().optional(),
  last_check: GoTimestampSchema.optional(),
  check_type: z.string().optional(),
  response_time_ms: z.number().int().optional(),
  error: z.string().optional(),
});

/** `pb.ServiceHealth` — GET /agents/{id}/health/{package}, and each entry of the agent's health. */
export const GoServiceHealthSchema = z.object({
  package: z.string().optional(),
  status: GoHealthStatusNumberSchema.optional(),
  last_check: GoTimestampSchema.optional(),
  message: z.string().optional(),
  details: z.array(GoHealthStatusDetailSchema).optional(),
});

/** GET /agents/{id}/health: the map `GetAgentOverallHealth` returns (`services` is nil → null when the agent has none). */
export const GoAgentHealthSchema = z.object({
  overall_status: z.enum(GO_HEALTH_STATUS_NAMES),
  total_services: z.number().int().nonnegative(),
  healthy: z.number().int().nonnegative(),
  unhealthy: z.number().int().nonnegative(),
  degraded: z.number().int().nonnegative(),
  unknown: z.number().int().nonnegative(),
  services: z.array(GoServiceHealthSchema).nullable(),
});

// ------------------------------------------------------------------------------ metrics

/** One network interface (`convertSystemMetricsToJSON`; int64 byte counters). */
export const GoNetworkInterfaceSchema = z.object({
  name: z.string(),
  rx_bytes: z.number().int(),
  tx_bytes: z.number().int(),
});

/**
 * GET /agents/{id}/metrics/system: `convertSystemMetricsToJSON`. Memory and disk are whole MB
 * (int64 bytes / 1048576, integer division), `usage` fields percentages (float64), `load` only
 * when one of the averages is > 0, `timestamp` RFC 3339 to the second.
 */
export const GoSystemMetricsSchema = z.object({
  cpu: z.object({ usage: z.number(), cores: z.number().int().positive().optional() }),
  memory: z.object({ total: z.number().int(), used: z.number().int(), usage: z.number() }),
  disk: z.object({ total: z.number().int(), used: z.number().int(), usage: z.number() }),
  network: z.object({ interfaces: z.array(GoNetworkInterfaceSchema) }),
  load: z.object({ '1min': z.number(), '5min': z.number(), '15min': z.number() }).optional(),
  timestamp: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$/, {
    message: "must be RFC 3339 to the second (Go's time.RFC3339)",
  }),
});

/** One package in GET /agents/{id}/metrics/services: `convertServiceMetricsToJSON` (memory.usage in MB, a float). */
export const GoServiceMetricSchema = z.object({
  cpu: z.object({ usage: z.number() }),
  memory: z.object({ usage: z.number(), usage_percent: z.number().optional() }),
});

/** GET /agents/{id}/metrics/services without `package`: a map by package name. */
export const GoServiceMetricsSchema = z.object({
  services: z.record(z.string(), GoServiceMetricSchema),
});

// ------------------------------------------------------------------------------ agents, packages, batches

/** `models.PackageStatus` (what the Go client decodes packages into; `duration` is a time.Duration in ns). */
export const GoPackageStatusSchema = z.object({
  name: z.string(),
  version: z.string(),
  is_running: z.boolean(),
  duration: z.number().int(),
});

/** `pb.PackItem` (what a Go controller's GET /agents/{id}/packages actually sends; all `omitempty`, running_duration in seconds). */
export const GoPackItemSchema = z.object({
  package: z.string().optional(),
  isRunning: z.boolean().optional(),
  schema: z.string().optional(),
  version: z.string().optional(),
  running_duration: z.number().int().optional(),
});

/** GET /agents/{id}/packages. */
export const GoAgentPackagesSchema = z.object({
  agent_id: z.string(),
  packages: z.array(GoPackageStatusSchema).nullable(),
});

const goTime = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/);

/** `models.Agent`. */
export const GoAgentSchema = z.object({
  id: z.string(),
  agent_code: z.string(),
  area_id: z.string(),
  address: z.string(),
  hostname: z.string(),
  status: z.string(),
  labels: z.record(z.string(), z.string()).nullable(),
  version: z.string(),
  last_heartbeat: goTime,
  register_time: goTime,
  services: z.array(GoPackageStatusSchema).nullable(),
  health_status: z.string().optional(),
  last_health_check: goTime.optional(),
});

/** `models.AgentsResponse` (`pageSize` camelCase). */
export const GoAgentsResponseSchema = z.object({
  agents: z.array(GoAgentSchema).nullable(),
  total: z.number().int(),
  page: z.number().int(),
  pageSize: z.number().int(),
});

/** `models.OperationResult` / `models.BatchOperationResult`. */
export const GoOperationResultSchema = z.object({
  agent_code: z.string(),
  package: z.string(),
  success: z.boolean(),
  error: z.string().optional(),
  message: z.string().optional(),
});
export const GoBatchOperationResultSchema = z.object({
  total: z.number().int(),
  success: z.number().int(),
  failed: z.number().int(),
  results: z.array(GoOperationResultSchema).nullable(),
  duration_ms: z.number().int(),
});

// ------------------------------------------------------------------------------ etcd registration

/**
 * The value a Go controller puts under `controllers/<function_area>/<id>` every 30 s, each time
 * with a fresh 60 s lease (`registerToUpstreamEtcd`). Its `address` is what the controller
 * registered as its service address — often only `:<port>`.
 */
export const GoControllerValueSchema = z.object({
  id: z.string(),
  address: z.string(),
  function_area: z.string(),
  start_time: goTime,
  version: z.string(),
  status: z.string(),
  last_heartbeat: goTime,
});

/** The Go platform library's `ControllerInfo` (what its discovery decodes): no heartbeat, no count. */
export const GoControllerInfoSchema = z.object({
  id: z.string(),
  address: z.string(),
  area: z.string(),
  start_time: goTime,
  version: z.string(),
});
