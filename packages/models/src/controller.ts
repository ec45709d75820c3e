/**
 * Controllers as they appear in etcd (`controllers/<area>/<id>`, lease-bound JSON value) and as
 * discovery presents them (the same value plus a derived `status`).
 */
import { z } from 'zod';
import { AreaNameSchema, ControllerIdSchema } from './names.js';
import { TimestampSchema } from './time.js';

export const DEFAULT_CONTROLLER_PREFIX = 'controllers/';

export const ControllerStatusSchema = z.enum(['online', 'offline']);
export type ControllerStatus = z.infer<typeof ControllerStatusSchema>;

/** The value a controller writes under its key. */
export const ControllerRegistrationSchema = z.object({
  id: ControllerIdSchema,
  address: z.string().min(1),
  area: AreaNameSchema,
  start_time: TimestampSchema,
  version: z.string().default(''),
  last_heartbeat: TimestampSchema,
  agent_count: z.number().int().nonnegative().default(0),
  metadata: z
    .record(z.string(), z.unknown())
    .nullish()
    .transform((m) => m ?? {}),
});
export type ControllerRegistration = z.infer<typeof ControllerRegistrationSchema>;
export type ControllerRegistrationInput = z.input<typeof ControllerRegistrationSchema>;

/** A discovered controller. */
export const ControllerSchema = ControllerRegistrationSchema.extend({
  status: ControllerStatusSchema,
});
export type Controller = z.infer<typeof ControllerSchema>;

/** GET /api/v1/status of a controller. */
export const ControllerStatusResponseSchema = z.object({
  id: z.string(),
  area: z.string(),
  version: z.string(),
  start_time: TimestampSchema,
  agent_count: z.number().int().nonnegative(),
  online_agent_count: z.number().int().nonnegative().optional(),
  uptime_seconds: z.number().nonnegative(),
  address: z.string().optional(),
});
export type ControllerStatusResponse = z.infer<typeof ControllerStatusResponseSchema>;

export function controllerKey(prefix: string, area: string, id: string): string {
  return `${prefix}${area}/${id}`;
}

/**
 * Parses `controllers/<area>/<id>` relative to the prefix. Returns null for anything that is
 * not exactly two safe segments, so stray keys under the prefix never become controllers.
 */
export function parseControllerKey(prefix: string, key: string): { area: string; id: string } | null {
  if (!key.startsWith(prefix)) return null;
  const parts = key.slice(prefix.length).split('/');
  if (parts.length !== 2) return null;
  const [area, id] = parts as [string, string];
  if (!AreaNameSchema.safeParse(area).success || !ControllerIdSchema.safeParse(id).success) {
    return null;
  }
  return { area, id };
}
