/** Health of an agent's packages (GET /agents/{id}/health and /health/{package}). */
import { z } from 'zod';
import { HealthStatusSchema } from './agent.js';
import { TimestampSchema } from './time.js';

export const HealthCheckTypeSchema = z.enum(['process', 'http', 'tcp', 'exec', 'none']);
export type HealthCheckType = z.infer<typeof HealthCheckTypeSchema>;

export const ServiceHealthSchema = z.object({
  name: z.string(),
  status: HealthStatusSchema,
  message: z.string().default(''),
  check_type: HealthCheckTypeSchema.optional(),
  /** Always set by Opsplane agents; absent when a Go agent sent no `last_check`. */
  checked_at: TimestampSchema.optional(),
  latency_ms: z.number().nonnegative().optional(),
  consecutive_failures: z.number().int().nonnegative().optional(),
});
export type ServiceHealth = z.infer<typeof ServiceHealthSchema>;

export const AgentHealthSchema = z.object({
  agent_id: z.string(),
  overall_status: HealthStatusSchema,
  services: z
    .record(z.string(), ServiceHealthSchema)
    .nullish()
    .transform((v) => v ?? {}),
  checked_at: TimestampSchema,
});
export type AgentHealth = z.infer<typeof AgentHealthSchema>;

/**
 * Overall status from the package checks: no checks → unknown; all healthy → healthy; all
 * unhealthy → unhealthy; any mix with at least one failing or unknown check → degraded.
 */
export function overallHealth(statuses: readonly z.infer<typeof HealthStatusSchema>[]) {
  if (statuses.length === 0) return 'unknown' as const;
  if (statuses.every((s) => s === 'healthy')) return 'healthy' as const;
  if (statuses.every((s) => s === 'unhealthy')) return 'unhealthy' as const;
  if (statuses.every((s) => s === 'unknown')) return 'unknown' as const;
  return 'degraded' as const;
}
