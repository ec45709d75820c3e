/**
 * Alerts on the wire: what the alert engine raised (controller offline, agent offline, package
 * unhealthy, deployment failed), their state (firing/resolved) and acknowledgement, and the body
 * webhooks receive.
 */
import { z } from 'zod';
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
  })
  .meta({ id: 'Alert' });
export type Alert = z.infer<typeof AlertSchema>;

export const AlertListQuerySchema = z
  .object({
    ...PageQuery,
    status: AlertStatusSchema.optional(),
    kind: AlertKindSchema.optional(),
    area: z.string().max(128).optional(),
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
