/**
 * Controllers as they appear in etcd (`controllers/<area>/<id>`, lease-bound JSON value) and as
 * discovery presents them (the same value plus a derived `status`). Two kinds of value are
 * controllers: Opsplane's (below) and the Go system's (`function_area` instead of `area`, maybe
 * no `last_heartbeat`; see go-shapes.ts) — `readControllerValue` accepts both.
 */
import { z } from 'zod';
import { AreaNameSchema, ControllerIdSchema } from './names.js';
import { formatIssues } from './errors.js';
import { GO_ZERO_TIME, TimestampSchema } from './time.js';

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

/**
 * Whose registration it is: `opsplane` (the value above: status from its heartbeat) or `go` (a
 * Go controller's value: status from its lease — online while the key exists).
 */
export const ControllerFlavorSchema = z.enum(['opsplane', 'go']);
export type ControllerFlavor = z.infer<typeof ControllerFlavorSchema>;

/** A discovered controller. */
export const ControllerSchema = ControllerRegistrationSchema.extend({
  status: ControllerStatusSchema,
  /** Set by discovery; absent means opsplane. */
  flavor: ControllerFlavorSchema.optional(),
});
export type Controller = z.infer<typeof ControllerSchema>;

/**
 * A Go controller's value, leniently: `registerToUpstreamEtcd` writes `function_area` and
 * `last_heartbeat`; the Go platform's `ControllerInfo` has `area` and no heartbeat. Area and id
 * may also come from the key alone.
 */
const GoRegistrationValueSchema = z.object({
  id: ControllerIdSchema.optional(),
  address: z.string().min(1),
  area: AreaNameSchema.optional(),
  function_area: AreaNameSchema.optional(),
  start_time: TimestampSchema.optional(),
  version: z.string().default(''),
  last_heartbeat: TimestampSchema.optional(),
  agent_count: z.number().int().nonnegative().optional(),
  metadata: z.record(z.string(), z.unknown()).nullish(),
});

export type ReadControllerValue =
  | {
      ok: true;
      /** The value as an Opsplane registration; a Go value without heartbeat gets GO_ZERO_TIME. */
      registration: ControllerRegistration;
      flavor: ControllerFlavor;
      /** Whether the value carried its own last_heartbeat. */
      hasHeartbeat: boolean;
    }
  | { ok: false; reason: string };

/**
 * Reads the value under `controllers/<area>/<id>` (`ref` from parseControllerKey): an Opsplane
 * registration, or a Go one (area from `area`, `function_area` or the key; id from the value or
 * the key). A value naming another area or id than its key is refused.
 */
export function readControllerValue(json: unknown, ref: { area: string; id: string }): ReadControllerValue {
  const own = ControllerRegistrationSchema.safeParse(json);
  if (own.success) {
    if (own.data.area !== ref.area || own.data.id !== ref.id) {
      return {
        ok: false,
        reason: `value names '${own.data.area}/${own.data.id}' but the key names '${ref.area}/${ref.id}'`,
      };
    }
    return { ok: true, registration: own.data, flavor: 'opsplane', hasHeartbeat: true };
  }
  const go = GoRegistrationValueSchema.safeParse(json);
  if (!go.success) return { ok: false, reason: `invalid value: ${formatIssues(own.error.issues)}` };
  const v = go.data;
  const area = v.area ?? v.function_area ?? ref.area;
  const id = v.id ?? ref.id;
  if (area !== ref.area || id !== ref.id || (v.function_area !== undefined && v.function_area !== area)) {
    return {
      ok: false,
      reason: `value names '${v.area ?? v.function_area ?? ref.area}/${id}' but the key names '${ref.area}/${ref.id}'`,
    };
  }
  return {
    ok: true,
    registration: {
      id,
      address: v.address,
      area,
      start_time: v.start_time ?? GO_ZERO_TIME,
      version: v.version,
      last_heartbeat: v.last_heartbeat ?? GO_ZERO_TIME,
      agent_count: v.agent_count ?? 0,
      metadata: v.metadata ?? {},
    },
    flavor: 'go',
    hasHeartbeat: v.last_heartbeat !== undefined,
  };
}

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
  // The Go controller's keys (models.ControllerStatus), for clients written against it.
  controller_id: z.string().optional(),
  function_area: z.string().optional(),
  system_info: z.object({ hostname: z.string(), os: z.string() }).optional(),
  etcd_status: z.string().optional(),
});
export type ControllerStatusResponse = z.infer<typeof ControllerStatusResponseSchema>;

/** Reads GET /api/v1/status of any controller: a Go controller's `controller_id`/`function_area` become `id`/`area`. */
export const ControllerStatusReadSchema = z.preprocess((raw) => {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  const r = raw as Record<string, unknown>;
  if (r.id !== undefined) return r;
  // models.ControllerStatus of the Go controller.
  const started = typeof r.start_time === 'string' ? Date.parse(r.start_time) : NaN;
  return {
    ...r,
    id: r.controller_id,
    area: r.area ?? r.function_area ?? '',
    version: r.version ?? '',
    agent_count: r.agent_count ?? 0,
    uptime_seconds:
      r.uptime_seconds ?? (started > 0 ? Math.max(0, Math.round((Date.now() - started) / 1000)) : 0),
  };
}, ControllerStatusResponseSchema);

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
