/** The audit log on the wire. */
import { z } from 'zod';
import { TimestampSchema } from '@opsplane/models';
import { PageQuery, TimestampOut } from './common.js';

export const AuditResultSchema = z.enum(['success', 'failure']);
export type AuditResult = z.infer<typeof AuditResultSchema>;

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
    ip: z.string().nullable(),
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
