/**
 * The audit trail: who did what to which target, when, from where, and whether it worked.
 * `run()` commits a change and its audit record in one transaction; when the change fails, the
 * transaction is rolled back and a failure record is written on its own, so attempts are audited
 * too. Also the one place audit rows become the API's AuditEntry.
 */
import { OpsplaneError } from '@opsplane/models';
import {
  iso,
  type AuditChange,
  type AuditEntry,
  type AuditListResponse,
  type AuditQuery,
  type AuditResult,
} from '@opsplane/api';
import type { Logger } from '@opsplane/kit';
import type { AuditRecord } from '../storage/audit-repo.js';
import type { AuditRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';

/** Who acts: an authenticated user (or 'anonymous' before login), and from which address. */
export interface Actor {
  username: string;
  userId: string | null;
  ip: string | null;
}

export const ANONYMOUS = (ip: string | null): Actor => ({ username: 'anonymous', userId: null, ip });

export interface AuditSpec {
  action: string;
  targetType?: string;
  /** May be filled in by the change once it knows it (e.g. the id of a created device). */
  targetId?: string | null;
  details?: Record<string, unknown>;
  /** What the change changed, field by field (before → after); see changesBetween(). */
  changes?: AuditChange[];
}

/** Field names whose values are secrets: recorded as '[redacted]' (booleans such as has_password stay). */
const SECRET_FIELD =
  /pass(word|phrase)?|private_?key|secret|token(?!_areas)|credential|authorization|cookie/i;
export const REDACTED = '[redacted]';

function flatten(v: unknown, prefix: string, out: Map<string, unknown>): void {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>))
      flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else out.set(prefix, v);
}

/**
 * The fields that differ between two API shapes of a resource (nested objects by dotted path;
 * arrays compared whole), with their values before and after. `null` before = created, `null`
 * after = deleted (then every field is listed). Fields in `ignore` (e.g. updated_at) are left
 * out; secret-looking fields are recorded as '[redacted]'.
 */
export function changesBetween(
  before: object | null,
  after: object | null,
  ignore: readonly string[] = ['updated_at', 'created_at', 'id'],
): AuditChange[] {
  const b = new Map<string, unknown>();
  const a = new Map<string, unknown>();
  if (before) flatten(before, '', b);
  if (after) flatten(after, '', a);
  const out: AuditChange[] = [];
  for (const field of [...new Set([...b.keys(), ...a.keys()])].sort()) {
    if (ignore.includes(field)) continue;
    const x = b.get(field);
    const y = a.get(field);
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    const secret = SECRET_FIELD.test(field.split('.').pop() ?? field);
    const show = (v: unknown) =>
      v === undefined ? null : secret && typeof v !== 'boolean' && v !== null ? REDACTED : v;
    out.push({ field, before: show(x), after: show(y) });
  }
  return out;
}

/** A secret that was set, replaced or removed: named, never shown. */
export function secretChange(field: string, had: boolean, now: 'set' | 'removed'): AuditChange {
  return { field, before: had ? REDACTED : null, after: now === 'set' ? REDACTED : null };
}

export function toAuditEntry(r: AuditRow): AuditEntry {
  const { changes, ...details } = r.details;
  return {
    id: r.id,
    at: iso(r.at),
    actor: r.actor,
    actor_id: r.actorId,
    action: r.action,
    target_type: r.targetType,
    target_id: r.targetId,
    result: r.result as AuditResult,
    details,
    changes: Array.isArray(changes) ? (changes as AuditChange[]) : [],
    ip: r.ip,
  };
}

const withChanges = (spec: AuditSpec): Record<string, unknown> | undefined =>
  spec.changes && spec.changes.length > 0 ? { ...spec.details, changes: spec.changes } : spec.details;

const recordOf = (actor: Actor): Pick<AuditRecord, 'actor' | 'actorId' | 'ip'> => ({
  actor: actor.username,
  actorId: actor.userId,
  ip: actor.ip,
});

export class AuditTrail {
  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
  ) {}

  /** Runs `change` in a transaction together with its success record; records failures too. */
  async run<T>(
    actor: Actor,
    spec: AuditSpec,
    change: (tx: Store, spec: AuditSpec) => Promise<T>,
  ): Promise<T> {
    try {
      return await this.store.transaction(async (tx) => {
        const result = await change(tx, spec);
        const { changes: _changes, ...rest } = spec;
        const details = withChanges(spec);
        await tx.audit.record({
          ...recordOf(actor),
          ...rest,
          ...(details ? { details } : {}),
          result: 'success',
        });
        return result;
      });
    } catch (e) {
      const error =
        e instanceof OpsplaneError
          ? { error: e.code, message: e.message }
          : { error: 'internal', message: 'internal error' };
      // What a failed change would have changed is not what it changed: the error says why.
      const { changes: _changes, ...rest } = spec;
      await this.record(actor, { ...rest, result: 'failure', details: { ...spec.details, ...error } });
      throw e;
    }
  }

  /** A record on its own (a denied request, a failed login); never throws — the log says when it failed. */
  async record(actor: Actor, r: AuditSpec & { result: AuditResult }): Promise<void> {
    const { changes: _changes, ...rest } = r;
    const details = withChanges(r);
    await this.store.audit
      .record({ ...recordOf(actor), ...rest, ...(details ? { details } : {}) })
      .catch((err: unknown) =>
        this.logger.error({ err, action: r.action }, 'could not write an audit record'),
      );
  }

  async list(q: AuditQuery): Promise<AuditListResponse> {
    const { rows, total } = await this.store.audit.list(q);
    return { entries: rows.map(toAuditEntry), total, page: q.page, pageSize: q.pageSize };
  }
}
