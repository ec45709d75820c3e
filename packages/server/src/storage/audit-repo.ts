/**
 * The audit log: who did what to which target, when, and whether it worked. Written in the same
 * transaction as the change it records; details pass through redact() so that a careless caller
 * cannot put a secret into the log, and every string has NUL and lone surrogates replaced (the
 * database refuses them, and a lost audit record is worse than a changed character).
 */
import { and, count, desc, eq, gte, like, lte, or, sql, type SQL } from 'drizzle-orm';
import { safeForMessage } from '@opsplane/models';
import type { Database } from './database.js';
import { auditLog, type AuditRow } from './schema.js';

export type AuditResult = 'success' | 'failure';

export interface AuditRecord {
  actor: string;
  actorId?: string | null;
  action: string;
  targetType?: string | null;
  targetId?: string | null;
  result: AuditResult;
  details?: Record<string, unknown>;
  ip?: string | null;
}

const SECRET_KEY = /pass(word|phrase)?|private_?key|secret|token|credential|authorization|cookie/i;

/** Deep copy of `v` with every secret-looking key's value replaced by '[redacted]'. */
export function redact(v: unknown, depth = 0): unknown {
  if (depth > 8) return '[truncated]';
  if (Array.isArray(v)) return v.slice(0, 200).map((x) => redact(x, depth + 1));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      out[safeForMessage(k)] =
        SECRET_KEY.test(k) && typeof x !== 'boolean' ? '[redacted]' : redact(x, depth + 1);
    }
    return out;
  }
  if (typeof v === 'string') return clean(v, 2000);
  return v;
}

/** `s` storable: NUL and lone surrogates replaced, at most `max` characters. */
function clean(s: string, max: number): string {
  const t = safeForMessage(s);
  return t.length > max ? t.slice(0, max) + '…' : t;
}

export interface AuditFilter {
  page: number;
  pageSize: number;
  actor?: string | undefined;
  /** Exact, or a prefix: `device.*` / `device.`. */
  action?: string | undefined;
  target_type?: string | undefined;
  target_id?: string | undefined;
  /** Free text (case-insensitive) over actor, action, target and details. */
  q?: string | undefined;
  result?: AuditResult | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);

export class AuditRepo {
  constructor(private readonly db: Database) {}

  async record(r: AuditRecord): Promise<void> {
    await this.db.insert(auditLog).values({
      actor: clean(r.actor, 256),
      actorId: r.actorId ?? null,
      action: clean(r.action, 256),
      targetType: r.targetType != null ? clean(r.targetType, 256) : null,
      targetId: r.targetId != null ? clean(r.targetId, 256) : null,
      result: r.result,
      details: redact(r.details ?? {}) as Record<string, unknown>,
      ip: r.ip ?? null,
    });
  }

  async list(q: AuditFilter): Promise<{ rows: AuditRow[]; total: number }> {
    const conds: SQL[] = [];
    if (q.actor) conds.push(eq(auditLog.actor, q.actor));
    if (q.action) {
      const prefix = q.action.endsWith('*')
        ? q.action.slice(0, -1)
        : q.action.endsWith('.')
          ? q.action
          : undefined;
      conds.push(
        prefix !== undefined
          ? like(auditLog.action, escapeLike(prefix) + '%')
          : eq(auditLog.action, q.action),
      );
    }
    if (q.target_type) conds.push(eq(auditLog.targetType, q.target_type));
    if (q.target_id) conds.push(eq(auditLog.targetId, q.target_id));
    if (q.result) conds.push(eq(auditLog.result, q.result));
    if (q.q) {
      const needle = `%${escapeLike(q.q.toLowerCase())}%`;
      conds.push(
        or(
          sql`lower(${auditLog.actor}) LIKE ${needle}`,
          sql`lower(${auditLog.action}) LIKE ${needle}`,
          sql`lower(coalesce(${auditLog.targetId}, '')) LIKE ${needle}`,
          sql`lower(${auditLog.details}::text) LIKE ${needle}`,
        ) as SQL,
      );
    }
    if (q.since) conds.push(gte(auditLog.at, new Date(q.since)));
    if (q.until) conds.push(lte(auditLog.at, new Date(q.until)));
    const where = conds.length ? and(...conds) : undefined;
    const [totalRow] = await this.db.select({ n: count() }).from(auditLog).where(where);
    const rows = await this.db
      .select()
      .from(auditLog)
      .where(where)
      .orderBy(desc(auditLog.id))
      .limit(q.pageSize)
      .offset((q.page - 1) * q.pageSize);
    return { rows, total: totalRow?.n ?? 0 };
  }
}
