/**
 * Agents and their packages as the controller API returns them (§2 of SYSTEM.md). Keys are the
 * Go system's: snake_case, except `pageSize` in AgentsResponse. Go marshals nil slices and maps
 * as `null`; we accept that and normalise to empty values.
 */
import { z } from 'zod';
import { TimestampSchema } from './time.js';
import { DistributionStatusSchema } from './distribution.js';

export const AgentStatusSchema = z.enum(['online', 'offline', 'unknown']);
export type AgentStatus = z.infer<typeof AgentStatusSchema>;

export const HealthStatusSchema = z.enum(['healthy', 'degraded', 'unhealthy', 'unknown']);
export type HealthStatus = z.infer<typeof HealthStatusSchema>;

export const PackageRunStateSchema = z.enum(['running', 'stopped', 'starting', 'stopping', 'failed']);
export type PackageRunState = z.infer<typeof PackageRunStateSchema>;

const nullableList = <T extends z.ZodTypeAny>(item: T) =>
  z
    .array(item)
    .nullish()
    .transform((v) => v ?? []);

const stringMap = z
  .record(z.string(), z.string())
  .nullish()
  .transform((v) => v ?? {});

export const PackageStatusSchema = z.object({
  name: z.string(),
  version: z.string().default(''),
  is_running: z.boolean(),
  /** Nanoseconds, as Go's time.Duration (a negative or fractional one from elsewhere is clamped). */
  duration: z
    .number()
    .default(0)
    .transform((v) => Math.max(0, Math.round(v))),
  status: PackageRunStateSchema.optional(),
  pid: z.number().int().nonnegative().optional(),
  restarts: z.number().int().nonnegative().optional(),
  uptime_seconds: z.number().nonnegative().optional(),
  health_status: HealthStatusSchema.optional(),
  last_error: z.string().optional(),
});
export type PackageStatus = z.infer<typeof PackageStatusSchema>;

/** GET /agents/{id}/packages: `{"agent_id","packages":[PackageStatus]}` (Go may send null packages). */
export const AgentPackagesResponseSchema = z.object({
  agent_id: z.string(),
  packages: z
    .array(PackageStatusSchema)
    .nullish()
    .transform((v) => v ?? []),
});
export type AgentPackagesResponse = z.infer<typeof AgentPackagesResponseSchema>;

export const AgentSchema = z.object({
  id: z.string(),
  agent_code: z.string().default(''),
  area_id: z.string().default(''),
  address: z.string().default(''),
  hostname: z.string().default(''),
  /** Absent (a Go record without it) reads as unknown; any other value is refused. */
  status: AgentStatusSchema.default('unknown'),
  labels: stringMap,
  version: z.string().default(''),
  last_heartbeat: TimestampSchema,
  register_time: TimestampSchema,
  services: nullableList(PackageStatusSchema),
  /** Go: `omitempty` — a Go controller leaves it out for agents it never health-checked. */
  health_status: z.string().default('unknown'),
  /** Go: `*time.Time` with `omitempty`, so absent for agents never health-checked. */
  last_health_check: TimestampSchema.optional(),
  zone: z.string().optional(),
  mode: z.string().optional(),
  group: z.string().optional(),
  deployment: z.string().optional(),
  os: z.string().optional(),
  arch: z.string().optional(),
  controller_id: z.string().optional(),
  /** Opsplane: convergence on the platform's desired state (a Go controller never sends it). */
  distribution: DistributionStatusSchema.optional(),
});
export type Agent = z.infer<typeof AgentSchema>;
export type AgentInput = z.input<typeof AgentSchema>;

export const AgentsResponseSchema = z.object({
  agents: nullableList(AgentSchema),
  total: z.number().int().nonnegative(),
  page: z.number().int().positive(),
  pageSize: z.number().int().positive(),
});
export type AgentsResponse = z.infer<typeof AgentsResponseSchema>;

/** The ten filters GET /agents accepts, in the Go controller's order. */
export const AGENT_FILTER_KEYS = [
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
] as const;
export type AgentFilterKey = (typeof AGENT_FILTER_KEYS)[number];
export type AgentFilters = Partial<Record<AgentFilterKey, string>>;

export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 1000;

const positiveIntParam = (name: string, max?: number) =>
  z
    .string()
    .regex(/^\d+$/, { message: `${name} must be a positive integer` })
    .transform(Number)
    .pipe(
      max === undefined
        ? z
            .number()
            .int()
            .min(1, { message: `${name} must be at least 1` })
        : z
            .number()
            .int()
            .min(1, { message: `${name} must be at least 1` })
            .max(max, { message: `${name} must be at most ${max}` }),
    );

/** Query string of GET /agents. Strict: an unknown parameter is an error, not silently ignored. */
export const AgentListQuerySchema = z
  .object({
    page: positiveIntParam('page').default(1),
    pageSize: positiveIntParam('pageSize', MAX_PAGE_SIZE).default(DEFAULT_PAGE_SIZE),
    ...Object.fromEntries(AGENT_FILTER_KEYS.map((k) => [k, z.string().max(256).optional()])),
  })
  .strict();
export type AgentListQuery = { page: number; pageSize: number } & AgentFilters;

/**
 * The message for an unknown query parameter: names it and, when it looks like a misspelt known
 * one (the classic `page_size`), suggests the right spelling.
 */
export function unknownAgentQueryParamMessage(param: string): string {
  const known = ['page', 'pageSize', ...AGENT_FILTER_KEYS];
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const suggestion = known.find((k) => norm(k) === norm(param));
  const hint = suggestion ? ` Did you mean '${suggestion}'?` : '';
  return `unknown query parameter '${param}'.${hint} Supported parameters: ${known.join(', ')}.`;
}

/** Returns a page of `items` (1-based page). */
export function paginate<T>(items: readonly T[], page: number, pageSize: number): T[] {
  const start = (page - 1) * pageSize;
  return items.slice(start, start + pageSize);
}
