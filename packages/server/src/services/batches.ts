/**
 * Cross-area batch jobs as the API serves them. create() starts a job (batch-runner.ts), audits
 * the request (also when it is refused), and waits up to `wait` for it: finished → the job with
 * one result per (agent, package); still running → the job without results (poll get()). The
 * batch runs to the end either way; a client that goes away does not cancel it. Also the one
 * place batch rows become the API's BatchJob.
 */
import { NotFoundError, OpsplaneError } from '@opsplane/models';
import {
  iso,
  isoOrNull,
  type BatchCreate,
  type BatchJob,
  type BatchListQuery,
  type BatchListResponse,
  type BatchResult,
} from '@opsplane/api';
import type { BatchJobRow, BatchResultRow } from '../storage/schema.js';
import type { Store } from '../storage/store.js';
import type { Actor, AuditTrail } from './audit-trail.js';
import type { BatchRunner } from './batch-runner.js';

export function toBatchJob(j: BatchJobRow, results?: BatchResultRow[]): BatchJob {
  return {
    id: j.id,
    action: j.action,
    status: j.status as BatchJob['status'],
    requested_by: j.requestedBy,
    request: j.request,
    total: j.total,
    success: j.success,
    failed: j.failed,
    created_at: iso(j.createdAt),
    finished_at: isoOrNull(j.finishedAt),
    duration_ms: j.durationMs,
    ...(results
      ? {
          results: results.map((r): BatchResult => ({
            agent_code: r.agentCode,
            package: r.package,
            area: r.area,
            success: r.success,
            ...(r.error !== null ? { error: r.error } : {}),
            ...(r.message !== null ? { message: r.message } : {}),
          })),
        }
      : {}),
  };
}

export class BatchService {
  constructor(
    private readonly store: Store,
    private readonly runner: BatchRunner,
    private readonly audit: AuditTrail,
  ) {}

  /** Starts a job; `finished` tells whether it ended within `waitMs` (then with its results). */
  async create(
    actor: Actor,
    body: BatchCreate,
    waitMs: number,
  ): Promise<{ finished: boolean; job: BatchJob }> {
    const action = `batch.${body.action}`;
    let started;
    try {
      started = await this.runner.start(body, actor.username);
    } catch (e) {
      await this.audit.record(actor, {
        action,
        targetType: 'batch',
        result: 'failure',
        details: {
          agents: body.agents?.length ?? null,
          filter: body.filter ?? null,
          ...(e instanceof OpsplaneError ? { error: e.code, message: e.message } : { error: 'internal' }),
        },
      });
      throw e;
    }
    const { job, agents, done } = started;
    await this.audit.record(actor, {
      action,
      targetType: 'batch',
      targetId: job.id,
      result: 'success',
      details: {
        agents,
        ...(body.filter ? { filter: body.filter } : {}),
        ...(body.packages ? { packages: body.packages } : {}),
        ...(body.package ? { package: body.package } : {}),
        ...(body.configs ? { config_files: body.configs.map((c) => c.file_name) } : {}),
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      done.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), waitMs);
      }),
    ]).finally(() => clearTimeout(timer));
    const current = await this.store.batches.get(job.id);
    if (!current) throw new NotFoundError(`batch ${job.id} vanished`);
    return finished && current.job.status !== 'running'
      ? { finished: true, job: toBatchJob(current.job, current.results) }
      : { finished: false, job: toBatchJob(current.job) };
  }

  async list(q: BatchListQuery): Promise<BatchListResponse> {
    const { jobs, total } = await this.store.batches.list({
      page: q.page,
      pageSize: q.pageSize,
      action: q.action,
      status: q.status,
      requestedBy: q.requested_by,
    });
    return { batches: jobs.map((j) => toBatchJob(j)), total, page: q.page, pageSize: q.pageSize };
  }

  async get(id: string): Promise<BatchJob> {
    const found = await this.store.batches.get(id);
    if (!found) throw new NotFoundError(`batch ${id} not found`);
    return toBatchJob(found.job, found.results);
  }
}
