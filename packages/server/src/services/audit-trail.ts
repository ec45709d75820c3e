/**
 * The audit trail: who did what to which target, when, from where, and whether it worked.
 * `run()` commits a change and its audit record in one transaction; when the change fails, the
 * transaction is rolled back and a failure record is written on its own, so attempts are audited
 * too. Also the one place audit rows become the API's AuditEntry.
 */
import { OpsplaneError } from '@opsplane/models';
import {
  iso,
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
}

export function toAuditEntry(r: AuditRow): AuditEntry {
  return {
    id: r.id,
    at: iso(r.at),
    actor: r.actor,
    actor_id: r.actorId,
    action: r.action,
    target_type: r.targetType,
    target_id: r.targetId,
    result: r.result as AuditResult,
    details: r.details,
    ip: r.ip,
  };
}

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
        await tx.audit.record({ ...recordOf(actor), ...spec, result: 'success' });
        return result;
      });
    } catch (e) {
      const error =
        e instanceof OpsplaneError
          ? { error: e.code, message: e.message }
          : { error: 'internal', message: 'internal error' };
      await this.record(actor, { ...spec, result: 'failure', details: { ...spec.details, ...error } });
      throw e;
    }
  }

  /** A record on its own (a denied request, a failed login); never throws — the log says when it failed. */
  async record(actor: Actor, r: AuditSpec & { result: AuditResult }): Promise<void> {
    await this.store.audit
      .record({ ...recordOf(actor), ...r })
      .catch((err: unknown) =>
        this.logger.error({ err, action: r.action }, 'could not write an audit record'),
      );
  }

  async list(q: AuditQuery): Promise<AuditListResponse> {
    const { rows, total } = await this.store.audit.list(q);
    return { entries: rows.map(toAuditEntry), total, page: q.page, pageSize: q.pageSize };
  }
}
