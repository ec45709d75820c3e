/** System and per-package metrics (GET /agents/{id}/metrics/system and /metrics/services). */
import { z } from 'zod';
import { TimestampSchema } from './time.js';

export const DiskUsageSchema = z.object({
  mount: z.string(),
  filesystem: z.string().optional(),
  total_bytes: z.number().nonnegative(),
  used_bytes: z.number().nonnegative(),
  used_percent: z.number().nonnegative().optional(),
});

export const NetworkInterfaceSchema = z.object({
  name: z.string(),
  rx_bytes: z.number().nonnegative(),
  tx_bytes: z.number().nonnegative(),
});

export const SystemMetricsSchema = z.object({
  agent_id: z.string(),
  cpu_percent: z.number().nonnegative(),
  cpu_count: z.number().int().nonnegative().optional(),
  load_average: z.object({ load1: z.number(), load5: z.number(), load15: z.number() }),
  memory: z.object({
    total_bytes: z.number().nonnegative(),
    used_bytes: z.number().nonnegative(),
    available_bytes: z.number().nonnegative().optional(),
    used_percent: z.number().nonnegative().optional(),
  }),
  disks: z
    .array(DiskUsageSchema)
    .nullish()
    .transform((v) => v ?? []),
  network: z.object({
    rx_bytes: z.number().nonnegative(),
    tx_bytes: z.number().nonnegative(),
    interfaces: z.array(NetworkInterfaceSchema).optional(),
  }),
  /** Always set by Opsplane agents; Go agents do not report it. */
  uptime_seconds: z.number().nonnegative().optional(),
  collected_at: TimestampSchema,
});
export type SystemMetrics = z.infer<typeof SystemMetricsSchema>;

/**
 * One package's process metrics. `is_running`, `restarts` and `uptime_seconds` are always set by
 * Opsplane agents; a Go controller's answer has only CPU and memory, so they may be absent.
 */
export const ServiceMetricSchema = z.object({
  name: z.string(),
  is_running: z.boolean().optional(),
  pid: z.number().int().nonnegative().optional(),
  cpu_percent: z.number().nonnegative(),
  rss_bytes: z.number().nonnegative(),
  /** Memory of the process as a percentage of the host's (Go agents report it). */
  memory_percent: z.number().nonnegative().optional(),
  restarts: z.number().int().nonnegative().optional(),
  uptime_seconds: z.number().nonnegative().optional(),
});
export type ServiceMetric = z.infer<typeof ServiceMetricSchema>;

export const ServiceMetricsSchema = z.object({
  agent_id: z.string(),
  services: z
    .array(ServiceMetricSchema)
    .nullish()
    .transform((v) => v ?? []),
  collected_at: TimestampSchema,
});
export type ServiceMetrics = z.infer<typeof ServiceMetricsSchema>;

export const ServiceMetricsQuerySchema = z
  .object({
    package: z.string().max(64).optional(),
    running_only: z.enum(['true', 'false']).optional(),
  })
  .strict();
