/**
 * Alerts on the wire: what the alert engine raised (controller offline, agent offline, package
 * unhealthy, deployment failed), their state (firing/resolved) and acknowledgement, and the body
 * webhooks receive.
 */
import { z } from 'zod';
import { DurationSchema } from '@opsplane/kit';
import { AgentCodeSchema, AreaNameSchema } from '@opsplane/models';
import { PageQuery, TimestampOut } from './common.js';

export const ALERT_KINDS = [
  'controller_offline',
  'agent_offline',
  'package_unhealthy',
  'deployment_failed',
] as const;
export const AlertKindSchema = z.enum(ALERT_KINDS);
export type AlertKind = z.infer<typeof AlertKindSchema>;

export const ALERT_SEVERITIES = ['critical', 'warning'] as const;
export const AlertSeveritySchema = z.enum(ALERT_SEVERITIES);
export type AlertSeverity = z.infer<typeof AlertSeveritySchema>;

export const ALERT_STATUSES = ['firing', 'resolved'] as const;
export const AlertStatusSchema = z.enum(ALERT_STATUSES);
export type AlertStatus = z.infer<typeof AlertStatusSchema>;

export const AlertSchema = z
  .object({
    id: z.uuid(),
    kind: AlertKindSchema,
    severity: AlertSeveritySchema,
    subject: z
      .string()
      .describe(
        'what the alert is about: controller:<area>/<id>, agent:<code>, package:<code>/<name> or deployment:<id>; ' +
          'at most one firing alert per subject',
      ),
    area: z.string().describe("'' when the subject has no area"),
    title: z.string(),
    message: z.string(),
    labels: z.record(z.string(), z.string()),
    status: AlertStatusSchema,
    first_seen: TimestampOut.describe('when the condition was first observed (before any pending_for delay)'),
    last_seen: TimestampOut.describe('the last evaluation that still found the condition'),
    resolved_at: TimestampOut.nullable(),
    acknowledged_by: z.string().nullable(),
    acknowledged_at: TimestampOut.nullable(),
    silenced_by: z
      .uuid()
      .nullable()
      .describe('an active silence that matches it (its notifications are not sent); null when none'),
  })
  .meta({ id: 'Alert' });
export type Alert = z.infer<typeof AlertSchema>;

export const AlertListQuerySchema = z
  .object({
    ...PageQuery,
    status: AlertStatusSchema.optional(),
    kind: AlertKindSchema.optional(),
    area: z.string().max(128).optional(),
    silenced: z
      .enum(['true', 'false'])
      .optional()
      .describe('true: only alerts an active silence matches; false: only the others'),
  })
  .strict();
export type AlertListQuery = z.infer<typeof AlertListQuerySchema>;

export const AlertListResponseSchema = z
  .object({
    items: z.array(AlertSchema),
    total: z.number().int(),
    page: z.number().int(),
    pageSize: z.number().int(),
  })
  .meta({ id: 'AlertList' });
export type AlertListResponse = z.infer<typeof AlertListResponseSchema>;

/** What a webhook receives (POST, JSON), signed with `x-opsplane-signature` when it has a secret. */
export const AlertNotificationSchema = z
  .object({
    event: AlertStatusSchema,
    alert: AlertSchema,
  })
  .meta({ id: 'AlertNotification' });
export type AlertNotification = z.infer<typeof AlertNotificationSchema>;

// ------------------------------------------------------------------------------ silences

/**
 * A silence: while active (until expires_at), alerts it matches are still recorded and shown,
 * but no webhook is notified of them. It matches an alert when every matcher it has holds:
 * `kind` (the rule), `area`, `agent_code` (the agent's own alerts and its packages').
 */
export const SilenceSchema = z
  .object({
    id: z.uuid(),
    kind: AlertKindSchema.nullable(),
    area: z.string().nullable(),
    agent_code: z.string().nullable(),
    comment: z.string(),
    created_by: z.string(),
    created_at: TimestampOut,
    expires_at: TimestampOut,
    active: z.boolean().describe('not expired (nor ended) yet'),
  })
  .meta({ id: 'Silence' });
export type Silence = z.infer<typeof SilenceSchema>;

export const MAX_SILENCE_MS = 90 * 24 * 3600_000;

export const SilenceCreateSchema = z
  .object({
    kind: AlertKindSchema.optional(),
    area: AreaNameSchema.optional(),
    agent_code: AgentCodeSchema.optional(),
    comment: z.string().max(500).default(''),
    duration: DurationSchema.pipe(
      z
        .number()
        .min(60_000, { message: 'duration must be at least 1m' })
        .max(MAX_SILENCE_MS, { message: 'duration must be at most 90 days' }),
    ).describe("how long, e.g. '2h'"),
  })
  .strict()
  .refine((s) => s.kind !== undefined || s.area !== undefined || s.agent_code !== undefined, {
    message: 'a silence needs at least one of kind, area, agent_code',
  });
export type SilenceCreate = z.infer<typeof SilenceCreateSchema>;
export type SilenceCreateInput = z.input<typeof SilenceCreateSchema>;

export const SilenceListQuerySchema = z
  .object({
    all: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true')
      .describe('also the expired ones (newest first)'),
  })
  .strict();

export const SilenceListResponseSchema = z.object({
  silences: z.array(SilenceSchema),
  total: z.number().int(),
});
export type SilenceListResponse = z.infer<typeof SilenceListResponseSchema>;
