/** The audit log on the wire. */
import { z } from 'zod';
import { TimestampSchema } from '@opsplane/models';
import { PageQuery, TimestampOut } from './common.js';

export const AuditResultSchema = z.enum(['success', 'failure']);
export type AuditResult = z.infer<typeof AuditResultSchema>;

/** One changed field of a change: its value before and after (secrets as '[redacted]'). */
export const AuditChangeSchema = z
  .object({
    field: z.string().describe("dotted path, e.g. 'login.port' or 'area_roles.area-1'"),
    before: z.unknown(),
    after: z.unknown(),
  })
  .meta({ id: 'AuditChange' });
export type AuditChange = z.infer<typeof AuditChangeSchema>;

export const AuditEntrySchema = z
  .object({
    id: z.number().int(),
    at: TimestampOut,
    actor: z.string(),
    actor_id: z.uuid().nullable(),
    action: z.string(),
    target_type: z.string().nullable(),
    target_id: z.string().nullable(),
    result: AuditResultSchema,
    details: z.record(z.string(), z.unknown()),
    changes: z
      .array(AuditChangeSchema)
      .describe('what a change changed, field by field, with the values before and after ([] when none)'),
    ip: z.string().nullable().describe('the client address the request came from'),
  })
  .meta({ id: 'AuditEntry' });
export type AuditEntry = z.infer<typeof AuditEntrySchema>;

export const AuditQuerySchema = z
  .object({
    ...PageQuery,
    actor: z.string().max(256).optional(),
    action: z
      .string()
      .max(128)
      .optional()
      .describe("exact action, or a prefix ending in '.' or '*' such as device.*"),
    target_type: z.string().max(64).optional(),
    target_id: z.string().max(256).optional(),
    q: z.string().max(200).optional().describe('free text over actor, action, target and details'),
    result: AuditResultSchema.optional(),
    since: TimestampSchema.optional(),
    until: TimestampSchema.optional(),
  })
  .strict();
export type AuditQuery = z.infer<typeof AuditQuerySchema>;

export const AuditListResponseSchema = z.object({
  entries: z.array(AuditEntrySchema),
  total: z.number().int(),
  page: z.number().int(),
  pageSize: z.number().int(),
});
export type AuditListResponse = z.infer<typeof AuditListResponseSchema>;
