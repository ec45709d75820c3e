/**
 * Deployments on the wire (guide's deployment model): installing, upgrading, restarting and
 * uninstalling the agent on devices. One request creates a rollout — one deployment per device —
 * that the durable queue works through N at a time; each deployment records its steps and a log.
 */
import { z } from 'zod';
import { PageQuery, TimestampOut } from './common.js';
import { DeviceNameSchema } from './devices.js';
import { LabelSelectorSchema } from './selectors.js';

export const DEPLOYMENT_TYPES = ['install', 'upgrade', 'uninstall', 'restart'] as const;
export const DeploymentTypeSchema = z.enum(DEPLOYMENT_TYPES);
export type DeploymentType = z.infer<typeof DeploymentTypeSchema>;

export const DEPLOYMENT_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export const DeploymentStatusSchema = z.enum(DEPLOYMENT_STATUSES);
export type DeploymentStatus = z.infer<typeof DeploymentStatusSchema>;
export const isFinished = (s: DeploymentStatus): boolean =>
  s === 'succeeded' || s === 'failed' || s === 'cancelled';

export const STEP_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'skipped'] as const;
export const StepStatusSchema = z.enum(STEP_STATUSES);
export type StepStatus = z.infer<typeof StepStatusSchema>;

/** Semver-ish agent version: `1.2.3`, `1.2.3-rc.1`. Safe as a directory name on every OS. */
export const AgentVersionSchema = z
  .string()
  .max(64)
  .regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, {
    message: 'version must look like 1.2.3 or 1.2.3-rc.1',
  });

export const DeploymentStepSchema = z
  .object({
    name: z.string(),
    status: StepStatusSchema,
    started_at: TimestampOut.nullable(),
    finished_at: TimestampOut.nullable(),
    message: z.string().nullable(),
  })
  .meta({ id: 'DeploymentStep' });
export type DeploymentStep = z.infer<typeof DeploymentStepSchema>;

export const DeploymentLogLineSchema = z
  .object({
    seq: z.number().int(),
    at: TimestampOut,
    level: z.enum(['info', 'warn', 'error']),
    step: z.string().nullable(),
    message: z.string(),
  })
  .meta({ id: 'DeploymentLogLine' });
export type DeploymentLogLine = z.infer<typeof DeploymentLogLineSchema>;

export const DeploymentSchema = z
  .object({
    id: z.uuid(),
    rollout_id: z.uuid(),
    type: DeploymentTypeSchema,
    device_id: z.uuid().nullable().describe('null once the device was deleted'),
    device_name: z.string(),
    area: z.string(),
    version: z.string().describe("agent version installed/upgraded to; '' for uninstall/restart"),
    status: DeploymentStatusSchema,
    attempt: z.number().int().describe('1 on the first run; +1 each time a restarted server resumes it'),
    retry_of: z.uuid().nullable(),
    cancel_requested: z.boolean(),
    steps: z.array(DeploymentStepSchema),
    error: z.string().nullable(),
    error_code: z.string().nullable(),
    requested_by: z.string(),
    created_at: TimestampOut,
    started_at: TimestampOut.nullable(),
    finished_at: TimestampOut.nullable(),
    duration_ms: z
      .number()
      .int()
      .nullable()
      .describe('started → finished (this attempt and any resumed one); null until finished'),
    /** Present on GET /deployments/{id} only. */
    log: z.array(DeploymentLogLineSchema).optional(),
  })
  .meta({ id: 'Deployment' });
export type Deployment = z.infer<typeof DeploymentSchema>;

export const ROLLOUT_STATUSES = ['running', 'succeeded', 'failed', 'stopped', 'cancelled'] as const;
export const RolloutSchema = z
  .object({
    id: z.uuid(),
    type: DeploymentTypeSchema,
    version: z.string(),
    batch_size: z.number().int().describe('at most this many deployments of the rollout run at once'),
    max_failures: z
      .number()
      .int()
      .describe('the rollout stops (the rest are cancelled) once this many failed; 0 = never'),
    status: z.enum(ROLLOUT_STATUSES),
    requested_by: z.string(),
    created_at: TimestampOut,
    finished_at: TimestampOut.nullable(),
    counts: z.object({
      total: z.number().int(),
      queued: z.number().int(),
      running: z.number().int(),
      succeeded: z.number().int(),
      failed: z.number().int(),
      cancelled: z.number().int(),
    }),
    deployments: z.array(DeploymentSchema),
  })
  .meta({ id: 'Rollout' });
export type Rollout = z.infer<typeof RolloutSchema>;

export const DeploymentCreateSchema = z
  .object({
    type: DeploymentTypeSchema,
    /** Device ids or names. */
    devices: z
      .array(z.union([z.uuid(), DeviceNameSchema]))
      .max(10_000)
      .optional(),
    /** Every device of this area (combined with `status` when given). */
    area: z.string().min(1).max(128).optional(),
    /** Every device in status `new` (never deployed). */
    all_new: z.boolean().optional(),
    /** Devices whose metadata (their labels) matches; with `area`, of that area only. */
    selector: LabelSelectorSchema.optional().describe(
      'devices whose metadata matches this label selector (e.g. role=web,env in (prod)); combines with area',
    ),
    /** Agent version for install/upgrade; default: the newest bundle the server has. */
    version: AgentVersionSchema.optional(),
    /** Rolling: at most this many devices at once (default: the server's max_workers). */
    batch_size: z.number().int().min(1).max(1000).optional(),
    /** Stop the rollout after this many failures; 0 (default) = never stop. */
    max_failures: z.number().int().min(0).max(10_000).optional(),
    /** The operator accepts changed SSH host keys of these devices (re-recorded). */
    accept_changed_host_key: z.boolean().optional(),
  })
  .strict()
  .refine(
    (b) =>
      [b.devices !== undefined, b.area !== undefined || b.selector !== undefined, b.all_new === true].filter(
        Boolean,
      ).length === 1,
    {
      message: 'give exactly one of devices, area (and/or selector) or all_new',
    },
  )
  .meta({ id: 'DeploymentCreate' });
export type DeploymentCreateInput = z.input<typeof DeploymentCreateSchema>;

export const DeploymentListQuerySchema = z
  .object({
    ...PageQuery,
    status: DeploymentStatusSchema.optional(),
    type: DeploymentTypeSchema.optional(),
    device: z.string().min(1).max(128).optional().describe('device id or name'),
    rollout: z.uuid().optional(),
  })
  .strict();

export const DeploymentListResponseSchema = z
  .object({
    items: z.array(DeploymentSchema),
    total: z.number().int(),
    page: z.number().int(),
    pageSize: z.number().int(),
  })
  .meta({ id: 'DeploymentList' });
export type DeploymentListResponse = z.infer<typeof DeploymentListResponseSchema>;

export const AgentBundleSchema = z
  .object({
    version: z.string(),
    sha256: z.string(),
    bytes: z.number().int(),
    node: z.string().describe('Node.js version range the bundle needs on the device'),
    added_at: TimestampOut,
    default: z.boolean().describe('used when a deployment names no version'),
  })
  .meta({ id: 'AgentBundle' });
export type AgentBundle = z.infer<typeof AgentBundleSchema>;

export const AgentBundleListSchema = z.object({ items: z.array(AgentBundleSchema) });
export type AgentBundleList = z.infer<typeof AgentBundleListSchema>;

/** Where a deployment's event stream resumes: after this log line (or the Last-Event-ID header). */
export const DeploymentEventsQuerySchema = z
  .object({
    after: z
      .string()
      .regex(/^\d{1,15}$/)
      .transform(Number)
      .optional(),
  })
  .strict();

/**
 * The events of GET /deployments/{id}/events by name, each the JSON `data` of its event. The
 * stream is text/event-stream, outside what the response schemas describe; this is its shape.
 */
export interface DeploymentStreamEvents {
  /** The deployment without its log: first, and on every status or step change. */
  deployment: Deployment;
  /** One log line (the event's id is its seq). */
  log: DeploymentLogLine;
  /** The finished deployment; then the stream closes. */
  end: Deployment;
}

export type AgentVersion = z.infer<typeof AgentVersionSchema>;
export type DeploymentCreate = z.infer<typeof DeploymentCreateSchema>;
export type DeploymentListQuery = z.infer<typeof DeploymentListQuerySchema>;
export type DeploymentEventsQuery = z.infer<typeof DeploymentEventsQuerySchema>;
