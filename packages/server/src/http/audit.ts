/**
 * Runs a change and its audit record in one transaction. If the change fails, the transaction
 * is rolled back and a failure record is written on its own, so attempts are audited too.
 */
import type { FastifyRequest } from 'fastify';
import { OpsplaneError } from '@opsplane/models';
import type { AuditRecord } from '../storage/audit-repo.js';
import type { Store } from '../storage/store.js';
import type { ServerContext } from './context.js';

export interface AuditSpec {
  action: string;
  targetType?: string;
  /** May be filled in by the change once it knows it (e.g. the id of a created device). */
  targetId?: string | null;
  details?: Record<string, unknown>;
}

export function actorOf(req: FastifyRequest): Pick<AuditRecord, 'actor' | 'actorId' | 'ip'> {
  const p = req.principal;
  return { actor: p ? p.user.username : 'anonymous', actorId: p?.user.id ?? null, ip: req.ip };
}

export async function audited<T>(
  ctx: ServerContext,
  req: FastifyRequest,
  spec: AuditSpec,
  change: (tx: Store, spec: AuditSpec) => Promise<T>,
): Promise<T> {
  try {
    return await ctx.store.transaction(async (tx) => {
      const result = await change(tx, spec);
      await tx.audit.record({ ...actorOf(req), ...spec, result: 'success' });
      return result;
    });
  } catch (e) {
    const error =
      e instanceof OpsplaneError
        ? { error: e.code, message: e.message }
        : { error: 'internal', message: 'internal error' };
    await ctx.store.audit
      .record({ ...actorOf(req), ...spec, result: 'failure', details: { ...spec.details, ...error } })
      .catch((auditErr: unknown) => req.log.error({ err: auditErr }, 'could not write failure audit record'));
    throw e;
  }
}
