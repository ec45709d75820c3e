/**
 * The platform half of the server API on the wire: live controllers and their history, the
 * aggregated agent view across areas, agent details through the controllers, cross-area batch
 * jobs, and areas with their (write-only) credentials.
 */
import { z } from 'zod';
import {
  AgentCodeSchema,
  AgentStatusSchema,
  AreaNameSchema,
  ConfigFileNameSchema,
  ConfigItemSchema,
  ControllerFlavorSchema,
  ControllerStatusSchema,
  PackageNameSchema,
  PackageStatusSchema,
  ResultReasonSchema,
  DistributionStatusSchema,
} from '@opsplane/models';
import { DurationSchema } from '@opsplane/kit';
import { PageQuery, TimestampOut } from './common.js';
import { DeviceSchema } from './devices.js';
import { LabelSelectorSchema } from './selectors.js';

// ------------------------------------------------------------------------------ shared pieces

const csv = (name: string, item: z.ZodType<string, string> = z.string().min(1).max(128)) =>
  z
    .string()
    .max(2000)
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item).min(1, { message: `${name} must name at least one value` }));

const boolParam = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .optional();

/** A controller the last refresh (or a request) could not use, and why. */
export const ViewErrorSchema = z
  .object({
    area: z.string(),
    controller_id: z.string().describe("'' when the error concerns the area or discovery as a whole"),
    code: z.string(),
    message: z.string(),
  })
  .meta({ id: 'ViewError' });
export type ViewError = z.infer<typeof ViewErrorSchema>;

// ------------------------------------------------------------------------------ controllers

export const LiveControllerSchema = z
  .object({
    area: z.string(),
    id: z.string(),
    address: z.string(),
    status: ControllerStatusSchema,
    flavor: ControllerFlavorSchema.describe(
      "opsplane, or go: a Go controller's registration (status from its etcd lease; no agent_count)",
    ),
    version: z.string(),
    agent_count: z.number().int(),
    last_heartbeat: TimestampOut,
    start_time: TimestampOut,
    metadata: z.record(z.string(), z.unknown()),
    listed_agents: z
      .number()
      .int()
      .nullable()
      .describe('agents listed from this controller by the last refresh of the agent view'),
    last_error: z
      .object({ code: z.string(), message: z.string() })
      .nullable()
      .describe('why the last refresh could not (fully) list this controller'),
  })
  .meta({ id: 'LiveController' });
export type LiveController = z.infer<typeof LiveControllerSchema>;

export const DiscoveryStateSchema = z.object({
  synced: z.boolean().describe('discovery has read the registrations from etcd at least once'),
  watching: z.boolean().describe('the etcd watch is connected now'),
  revision: z.string(),
  last_error: z.string().nullable(),
});

export const ControllerListQuerySchema = z
  .object({
    area: z.string().max(64).optional(),
    status: ControllerStatusSchema.optional(),
  })
  .strict();

export const ControllerListResponseSchema = z.object({
  controllers: z.array(LiveControllerSchema),
  total: z.number().int(),
  discovery: DiscoveryStateSchema,
});
export type ControllerListResponse = z.infer<typeof ControllerListResponseSchema>;

export const ControllerHistoryQuerySchema = z
  .object({
    area: z.string().max(64).optional(),
    controller_id: z.string().max(128).optional(),
    limit: z
      .string()
      .regex(/^\d{1,5}$/, { message: 'limit must be a positive integer' })
      .transform(Number)
      .pipe(z.number().int().min(1).max(5000))
      .default(500),
  })
  .strict();

export const ControllerHistoryEntrySchema = z
  .object({
    id: z.number().int(),
    area: z.string(),
    controller_id: z.string(),
    address: z.string(),
    version: z.string(),
    came_at: TimestampOut,
    went_at: TimestampOut.nullable().describe('null while the controller is registered'),
    last_seen_at: TimestampOut,
  })
  .meta({ id: 'ControllerHistoryEntry' });

export const ControllerHistoryResponseSchema = z.object({
  history: z.array(ControllerHistoryEntrySchema),
});
export type ControllerHistoryResponse = z.infer<typeof ControllerHistoryResponseSchema>;

// ------------------------------------------------------------------------------ agents

/** One agent of the aggregated view (guide §4.2), joined with its device by agent code. */
export const AgentViewSchema = z
  .object({
    id: z.string(),
    agent_code: z.string(),
    area: z.string().describe('area of the controller that reported the agent'),
    controller_id: z.string().describe('the controller holding the agent (newest heartbeat wins)'),
    device_id: z.string().nullable(),
    device_name: z.string().nullable(),
    address: z.string(),
    hostname: z.string(),
    status: AgentStatusSchema,
    health_status: z.string(),
    service_count: z.number().int(),
    last_heartbeat: TimestampOut,
    register_time: TimestampOut,
    last_health_check: TimestampOut.optional().describe(
      'absent when the controller never health-checked the agent (a Go controller leaves it out)',
    ),
    version: z.string(),
    labels: z.record(z.string(), z.string()),
    zone: z.string().optional(),
    mode: z.string().optional(),
    group: z.string().optional(),
    deployment: z.string().optional(),
    os: z.string().optional(),
    arch: z.string().optional(),
    services: z.array(PackageStatusSchema),
    distribution: DistributionStatusSchema.optional().describe(
      "the agent's convergence on its policy (absent: it reported none)",
    ),
  })
  .meta({ id: 'AggregatedAgent' });
export type AgentView = z.infer<typeof AgentViewSchema>;

export const AGENT_SORT_FIELDS = [
  'id',
  'area',
  'status',
  'health_status',
  'last_heartbeat',
  'register_time',
  'version',
  'hostname',
  'address',
  'controller_id',
  'device_name',
  'service_count',
] as const;
export type AgentSortField = (typeof AGENT_SORT_FIELDS)[number];

const SORT_RE = new RegExp(`^-?(${AGENT_SORT_FIELDS.join('|')})$`);

/** Filters of the agent view (also what a batch `filter` may say). */
export const AgentFilterShape = {
  area: csv('area', AreaNameSchema).optional().describe('one or more areas, comma separated'),
  status: csv('status', AgentStatusSchema).optional().describe('online, offline, unknown; comma separated'),
  health_status: csv('health_status')
    .optional()
    .describe('healthy, degraded, unhealthy, unknown; comma separated'),
  controller_id: z.string().max(128).optional(),
  version: z.string().max(64).optional(),
  zone: z.string().max(128).optional(),
  q: z
    .string()
    .max(200)
    .optional()
    .describe('free text (case-insensitive substring) over id, hostname, address and device name'),
  selector: LabelSelectorSchema.optional().describe(
    "label selector over the agents' labels: env=prod,role!=db, tier in (web,api), tier notin (cache), canary, !canary",
  ),
};

export const AgentListQuerySchema = z
  .object({
    ...PageQuery,
    ...AgentFilterShape,
    sort: z
      .string()
      .regex(SORT_RE, {
        message: `sort must be one of ${AGENT_SORT_FIELDS.join(', ')}, optionally prefixed by '-'`,
      })
      .default('area')
      .describe(`[-]field: ${AGENT_SORT_FIELDS.join(', ')}; '-' sorts descending (ties by id)`),
    order: z.enum(['asc', 'desc']).optional().describe('alternative to the - prefix'),
    refresh: boolParam.describe('operators: rebuild the view from the controllers before answering'),
  })
  .strict();
export type AgentListQuery = z.infer<typeof AgentListQuerySchema>;
export type AgentFilter = Pick<
  AgentListQuery,
  'area' | 'status' | 'health_status' | 'controller_id' | 'version' | 'zone' | 'q' | 'selector'
>;

export const AgentListResponseSchema = z.object({
  agents: z.array(AgentViewSchema),
  total: z.number().int(),
  page: z.number().int(),
  pageSize: z.number().int(),
  refreshed_at: TimestampOut.nullable().describe('when the view was last built; null before the first build'),
  stale: z
    .boolean()
    .describe('the view is older than cache.agent_ttl, was never built, or discovery is not synced'),
  refreshing: z.boolean(),
  errors: z
    .array(ViewErrorSchema)
    .describe('controllers (or areas) the last refresh could not fully list; their agents may be missing'),
});
export type AgentListResponse = z.infer<typeof AgentListResponseSchema>;

export const AgentCodeParamsSchema = z.object({ code: AgentCodeSchema });

export const AgentDetailSchema = AgentViewSchema.extend({
  device: DeviceSchema.nullable().describe('the device whose agent code this is, if any'),
}).meta({ id: 'AgentDetail' });
export type AgentDetail = z.infer<typeof AgentDetailSchema>;

export const ServiceMetricsQuerySchema = z
  .object({
    package: PackageNameSchema.optional(),
    running_only: boolParam,
  })
  .strict();

// ------------------------------------------------------------------------------ batches

export const BATCH_JOB_ACTIONS = ['start', 'stop', 'restart', 'configs'] as const;
export const BatchJobActionSchema = z.enum(BATCH_JOB_ACTIONS);
export type BatchJobAction = z.infer<typeof BatchJobActionSchema>;

/** In a JSON body a list may also be an array. */
const listOrCsv = (name: string, item: z.ZodType<string, string>) =>
  z.union([z.array(item).min(1, { message: `${name} must name at least one value` }), csv(name, item)]);

export const BatchFilterSchema = z
  .object({
    ...AgentFilterShape,
    area: listOrCsv('area', AreaNameSchema).optional(),
    status: listOrCsv('status', AgentStatusSchema).optional(),
    health_status: listOrCsv('health_status', z.string().min(1).max(128)).optional(),
  })
  .strict();
export type BatchFilter = z.infer<typeof BatchFilterSchema>;

export const MAX_BATCH_AGENTS = 100_000;

export const BatchCreateSchema = z
  .object({
    action: BatchJobActionSchema,
    agents: z
      .array(AgentCodeSchema)
      .min(1, { message: 'agents must list at least one agent code' })
      .max(MAX_BATCH_AGENTS)
      .optional()
      .describe('agent codes; or give a filter'),
    filter: BatchFilterSchema.optional().describe('select the agents from the aggregated view instead'),
    packages: z
      .array(PackageNameSchema)
      .max(100)
      .optional()
      .describe('start/stop/restart: packages; empty or absent = every package of each agent'),
    package: PackageNameSchema.optional().describe('configs: the package'),
    configs: z.array(ConfigItemSchema).min(1).max(50).optional().describe('configs: the files'),
    config_file: z.string().max(255).optional().describe("configs: the package's main config among configs"),
    timeout: DurationSchema.pipe(
      z
        .number()
        .min(1000, { message: 'timeout must be at least 1s' })
        .max(3_600_000, { message: 'timeout must be at most 1h' }),
    )
      .optional()
      .describe(
        'one deadline for the whole batch, across controllers and retries (default server.batch_timeout); ' +
          'an agent without an answer by then is outcome_unknown (or not_delivered if it cannot have received it)',
      ),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.agents === undefined && b.filter === undefined)
      ctx.addIssue({ code: 'custom', path: ['agents'], message: 'give agents (agent codes) or a filter' });
    if (b.agents !== undefined && b.filter !== undefined)
      ctx.addIssue({ code: 'custom', path: ['filter'], message: 'give agents or a filter, not both' });
    if (b.action === 'configs') {
      if (!b.package) ctx.addIssue({ code: 'custom', path: ['package'], message: 'configs needs a package' });
      if (!b.configs) ctx.addIssue({ code: 'custom', path: ['configs'], message: 'configs needs configs' });
      if (b.packages)
        ctx.addIssue({ code: 'custom', path: ['packages'], message: 'configs takes package, not packages' });
    } else {
      for (const k of ['package', 'configs', 'config_file'] as const)
        if (b[k] !== undefined)
          ctx.addIssue({ code: 'custom', path: [k], message: `${k} only goes with action configs` });
    }
  });
export type BatchCreate = z.infer<typeof BatchCreateSchema>;
export type BatchCreateInput = z.input<typeof BatchCreateSchema>;

export const BatchCreateQuerySchema = z
  .object({
    wait: DurationSchema.pipe(z.number().min(0).max(600_000, { message: 'wait must be at most 10m' }))
      .optional()
      .describe(
        'how long to wait for the batch to finish before answering 202 (default server.batch_wait; 0 = answer at once)',
      ),
  })
  .strict();

export const BatchResultSchema = z
  .object({
    agent_code: z.string(),
    package: z.string(),
    area: z.string().nullable(),
    success: z.boolean(),
    reason: ResultReasonSchema.describe(
      "done; failed_on_agent (error: the agent's own error); interrupted (the agent stopped while it ran it); " +
        'not_delivered (it never reached the agent — safe to retry); outcome_unknown (it may have, no answer by the deadline)',
    ),
    error: z.string().optional(),
    message: z.string().optional(),
    old_pid: z.number().int().optional().describe("the package's process before the operation"),
    new_pid: z.number().int().optional().describe("the package's process after it"),
    agent_duration_ms: z.number().optional().describe('how long the agent spent on it'),
    replayed: z
      .boolean()
      .optional()
      .describe('the agent answered from its journal: it had done it before (sent again after a failure)'),
    attempts: z
      .number()
      .int()
      .optional()
      .describe('how many times it was sent (more than 1 after a controller failed)'),
  })
  .meta({ id: 'BatchResult' });
export type BatchResult = z.infer<typeof BatchResultSchema>;

export const BATCH_JOB_STATUSES = ['running', 'done', 'failed', 'interrupted'] as const;

export const BatchJobSchema = z
  .object({
    id: z.uuid(),
    action: z.string(),
    status: z
      .enum(BATCH_JOB_STATUSES)
      .describe(
        'running; done: every (agent, package) has its result; interrupted: the server stopped while it ran ' +
          'and some outcomes could not be learned from the agents afterwards; failed: the job itself broke',
      ),
    operation_id: z.string().describe('the operation id the agents journal it under (never acts twice)'),
    targets: z.number().int().describe('agents the batch addresses'),
    deadline_at: TimestampOut.nullable(),
    requested_by: z.string(),
    request: z
      .record(z.string(), z.unknown())
      .describe('the request as recorded (config file contents are replaced by their size and sha256)'),
    total: z.number().int().describe('results so far (final once the job is not running)'),
    success: z.number().int(),
    failed: z.number().int(),
    created_at: TimestampOut,
    finished_at: TimestampOut.nullable(),
    duration_ms: z.number().int().nullable(),
    results: z
      .array(BatchResultSchema)
      .optional()
      .describe(
        'one per (agent, package) — those known so far while running; with GET /batches/{id} and finished POSTs',
      ),
  })
  .meta({ id: 'BatchJob' });
export type BatchJob = z.infer<typeof BatchJobSchema>;

export const BatchListQuerySchema = z
  .object({
    ...PageQuery,
    action: BatchJobActionSchema.optional(),
    status: z.enum(BATCH_JOB_STATUSES).optional(),
    requested_by: z.string().max(128).optional(),
  })
  .strict();

export const BatchListResponseSchema = z.object({
  batches: z.array(BatchJobSchema),
  total: z.number().int(),
  page: z.number().int(),
  pageSize: z.number().int(),
});
export type BatchListResponse = z.infer<typeof BatchListResponseSchema>;

// ------------------------------------------------------------------------------ areas

export const AreaSchema = z
  .object({
    name: z.string(),
    has_agent_secret: z.boolean(),
    has_controller_token: z.boolean(),
    controllers: z.number().int().describe('registered controllers'),
    controllers_online: z.number().int(),
    devices: z.number().int(),
    agents: z.number().int().describe('agents in the aggregated view'),
  })
  .meta({ id: 'Area' });
export type Area = z.infer<typeof AreaSchema>;

export const AreaListResponseSchema = z.object({ areas: z.array(AreaSchema) });
export type AreaListResponse = z.infer<typeof AreaListResponseSchema>;

export const AreaParamsSchema = z.object({ area: AreaNameSchema });

export const AreaCredentialsUpdateSchema = z
  .object({
    agent_secret: z
      .string()
      .min(16, { message: 'agent_secret must be at least 16 characters' })
      .max(1024)
      .nullable()
      .optional()
      .describe('a string sets, null removes, absent keeps'),
    controller_token: z
      .string()
      .min(1)
      .max(4096)
      .nullable()
      .optional()
      .describe('a string sets, null removes, absent keeps'),
  })
  .strict()
  .refine((b) => b.agent_secret !== undefined || b.controller_token !== undefined, {
    message: 'nothing to update: give agent_secret and/or controller_token',
  });
export type AreaCredentialsUpdate = z.infer<typeof AreaCredentialsUpdateSchema>;

export type DiscoveryState = z.infer<typeof DiscoveryStateSchema>;
export type ControllerListQuery = z.infer<typeof ControllerListQuerySchema>;
export type ControllerHistoryQuery = z.infer<typeof ControllerHistoryQuerySchema>;
export type ControllerHistoryEntry = z.infer<typeof ControllerHistoryEntrySchema>;
export type ServiceMetricsQuery = z.infer<typeof ServiceMetricsQuerySchema>;
export type BatchCreateQuery = z.infer<typeof BatchCreateQuerySchema>;
export type BatchListQuery = z.infer<typeof BatchListQuerySchema>;

/**
 * The events of GET /batches/{id}/events by name, each the JSON `data` of its event (the stream
 * is text/event-stream, outside what the response schemas describe).
 */
export interface BatchStreamEvents {
  /** The job without results: first, and whenever its counts change. */
  job: BatchJob;
  /** One (agent, package) result, final (the event's id is its seq). */
  result: BatchResult;
  /** The finished job; then the stream closes. */
  end: BatchJob;
}

// ------------------------------------------------------------------------------ metrics history

export const MAX_METRICS_WINDOW_MS = 24 * 3600_000;

export const MetricsHistoryQuerySchema = z
  .object({
    window: DurationSchema.pipe(
      z
        .number()
        .min(60_000, { message: 'window must be at least 1m' })
        .max(MAX_METRICS_WINDOW_MS, { message: 'window must be at most 24h' }),
    )
      .default(3600_000)
      .describe("how far back, e.g. '1h' (default), '6h', '24h' (the server keeps 24 h)"),
    package: PackageNameSchema.optional().describe('only this package (default: every package)'),
  })
  .strict();
export type MetricsHistoryQuery = z.infer<typeof MetricsHistoryQuerySchema>;

export const SystemPointSchema = z.object({
  at: TimestampOut,
  cpu_percent: z.number(),
  memory_used_bytes: z.number(),
  memory_total_bytes: z.number(),
  memory_used_percent: z.number(),
  load1: z.number(),
  rx_bytes: z.number().describe('bytes received since the host booted (a counter)'),
  tx_bytes: z.number(),
});
export type SystemPoint = z.infer<typeof SystemPointSchema>;

export const PackagePointSchema = z.object({
  at: TimestampOut,
  cpu_percent: z.number(),
  rss_bytes: z.number(),
  restarts: z.number().int(),
  running: z.boolean(),
});
export type PackagePoint = z.infer<typeof PackagePointSchema>;

export const MetricsHistorySchema = z
  .object({
    agent_code: z.string(),
    interval_ms: z.number().int().describe('one sample per interval (server.metrics_history.interval)'),
    retention_ms: z.number().int(),
    from: TimestampOut,
    to: TimestampOut,
    system: z.array(SystemPointSchema).describe('oldest first'),
    packages: z.array(z.object({ name: z.string(), points: z.array(PackagePointSchema) })),
  })
  .meta({ id: 'MetricsHistory' });
export type MetricsHistory = z.infer<typeof MetricsHistorySchema>;

// ------------------------------------------------------------------------------ config files

export const ConfigParamsSchema = z.object({ code: AgentCodeSchema, package: PackageNameSchema });
export const ConfigFileParamsSchema = ConfigParamsSchema.extend({ file: ConfigFileNameSchema });

/** Where a batch's event stream resumes: after this result (or the Last-Event-ID header). */
export const BatchEventsQuerySchema = z
  .object({
    after: z
      .string()
      .regex(/^\d{1,15}$/)
      .transform(Number)
      .optional(),
  })
  .strict();
