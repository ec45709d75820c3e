/**
 * Batch jobs, the agents they address (targets) and their per-(agent, package) results. A job
 * and its targets are written before anything is sent; results are upserted as they become final
 * (one per pair, so a result that reconciliation learns later replaces nothing twice); the
 * counts on the job follow the results.
 */
import { and, asc, count, desc, eq, gt, isNull, sql, type SQL } from 'drizzle-orm';
import type { Database } from './database.js';
import {
  batchJobs,
  batchResults,
  batchTargets,
  type BatchJobRow,
  type BatchResultDetails,
  type BatchResultRow,
  type BatchTargetRow,
} from './schema.js';

const CHUNK = 500;

/** A result as storage keeps it. */
export interface BatchResultInput {
  agentCode: string;
  package: string;
  area: string | null;
  success: boolean;
  reason: string | null;
  error: string | null;
  message: string | null;
  details: BatchResultDetails;
}

export class BatchesRepo {
  constructor(private readonly db: Database) {}

  /** The job and its targets, in the caller's transaction. */
  async create(job: {
    action: string;
    requestedBy: string;
    request: Record<string, unknown>;
    deadlineAt: Date;
    targets: readonly { agentCode: string; area: string | null }[];
    /** The replica running it, and how long its lease lasts. */
    owner?: string;
    leaseMs?: number;
  }): Promise<BatchJobRow> {
    const [row] = await this.db
      .insert(batchJobs)
      .values({
        action: job.action,
        requestedBy: job.requestedBy,
        request: job.request,
        deadlineAt: job.deadlineAt,
        ...(job.owner !== undefined
          ? {
              owner: job.owner,
              leaseExpiresAt: sql`now() + make_interval(secs => ${(job.leaseMs ?? 15_000) / 1000})`,
            }
          : {}),
      })
      .returning();
    const created = row as BatchJobRow;
    for (let i = 0; i < job.targets.length; i += CHUNK) {
      await this.db
        .insert(batchTargets)
        .values(job.targets.slice(i, i + CHUNK).map((t) => ({ jobId: created.id, ...t })))
        .onConflictDoNothing();
    }
    return created;
  }

  /** Adds results; a later result for the same (agent, package) replaces the earlier one. */
  async upsertResults(jobId: string, results: readonly BatchResultInput[]): Promise<BatchResultRow[]> {
    const out: BatchResultRow[] = [];
    const ex = (col: string) => sql.raw(`excluded.${col}`);
    for (let i = 0; i < results.length; i += CHUNK) {
      const rows = await this.db
        .insert(batchResults)
        .values(results.slice(i, i + CHUNK).map((r) => ({ jobId, ...r })))
        .onConflictDoUpdate({
          target: [batchResults.jobId, batchResults.agentCode, batchResults.package],
          set: {
            area: ex('area'),
            success: ex('success'),
            reason: ex('reason'),
            error: ex('error'),
            message: ex('message'),
            details: ex('details'),
          },
        })
        .returning();
      out.push(...rows);
    }
    return out;
  }

  /** Sets the job's counts from its results (while it runs, and at the end). */
  async refreshCounts(jobId: string): Promise<void> {
    await this.db.execute(sql`UPDATE batch_jobs SET
      total = (SELECT count(*) FROM batch_results WHERE job_id = ${jobId}),
      success = (SELECT count(*) FROM batch_results WHERE job_id = ${jobId} AND success),
      failed = (SELECT count(*) FROM batch_results WHERE job_id = ${jobId} AND NOT success)
      WHERE id = ${jobId}`);
  }

  /** Final status; the counts come from the results. Only a running job is finished. */
  async finish(
    jobId: string,
    status: 'done' | 'failed' | 'interrupted',
    durationMs: number | null,
    /** Only while this replica still owns it (another may have taken it over). */
    owner?: string,
  ): Promise<BatchJobRow | undefined> {
    await this.refreshCounts(jobId);
    const [row] = await this.db
      .update(batchJobs)
      .set({ status, durationMs, finishedAt: sql`now()`, leaseExpiresAt: null })
      .where(
        and(
          eq(batchJobs.id, jobId),
          eq(batchJobs.status, 'running'),
          owner !== undefined ? eq(batchJobs.owner, owner) : undefined,
        ),
      )
      .returning();
    return row;
  }

  /** Renews the leases of the running jobs `owner` holds. */
  async renewLeases(owner: string, leaseMs: number): Promise<number> {
    const rows = await this.db
      .update(batchJobs)
      .set({ leaseExpiresAt: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
      .where(and(eq(batchJobs.owner, owner), eq(batchJobs.status, 'running')))
      .returning({ id: batchJobs.id });
    return rows.length;
  }

  /**
   * Takes over running jobs nobody holds: lease lapsed (its replica died or lost the database)
   * or never set — or, with `anyOwner` (an embedded database: no other replica exists), every one.
   */
  async takeOver(owner: string, leaseMs: number, anyOwner = false): Promise<BatchJobRow[]> {
    return this.db
      .update(batchJobs)
      .set({ owner, leaseExpiresAt: sql`now() + make_interval(secs => ${leaseMs / 1000})` })
      .where(
        and(
          eq(batchJobs.status, 'running'),
          anyOwner
            ? sql`true`
            : sql`(${batchJobs.leaseExpiresAt} IS NULL OR ${batchJobs.leaseExpiresAt} < now())`,
        ),
      )
      .returning();
  }

  /** Jobs still marked running. */
  async running(): Promise<BatchJobRow[]> {
    return this.db
      .select()
      .from(batchJobs)
      .where(eq(batchJobs.status, 'running'))
      .orderBy(asc(batchJobs.createdAt));
  }

  async targets(jobId: string): Promise<BatchTargetRow[]> {
    return this.db.select().from(batchTargets).where(eq(batchTargets.jobId, jobId));
  }

  /** Targets with no result at all yet. */
  async targetsWithoutResults(jobId: string): Promise<BatchTargetRow[]> {
    const rows = await this.db
      .select({ target: batchTargets })
      .from(batchTargets)
      .leftJoin(
        batchResults,
        and(eq(batchResults.jobId, batchTargets.jobId), eq(batchResults.agentCode, batchTargets.agentCode)),
      )
      .where(and(eq(batchTargets.jobId, jobId), isNull(batchResults.id)));
    return rows.map((r) => r.target);
  }

  async countTargets(jobId: string): Promise<number> {
    const [n] = await this.db.select({ n: count() }).from(batchTargets).where(eq(batchTargets.jobId, jobId));
    return n?.n ?? 0;
  }

  async list(q: {
    page: number;
    pageSize: number;
    action?: string | undefined;
    status?: string | undefined;
    requestedBy?: string | undefined;
  }): Promise<{ jobs: BatchJobRow[]; total: number }> {
    const conds: SQL[] = [];
    if (q.action) conds.push(eq(batchJobs.action, q.action));
    if (q.status) conds.push(eq(batchJobs.status, q.status));
    if (q.requestedBy) conds.push(eq(batchJobs.requestedBy, q.requestedBy));
    const where = conds.length ? and(...conds) : undefined;
    const [n] = await this.db.select({ n: count() }).from(batchJobs).where(where);
    const jobs = await this.db
      .select()
      .from(batchJobs)
      .where(where)
      .orderBy(desc(batchJobs.createdAt), desc(batchJobs.id))
      .limit(q.pageSize)
      .offset((q.page - 1) * q.pageSize);
    return { jobs, total: n?.n ?? 0 };
  }

  async job(jobId: string): Promise<BatchJobRow | undefined> {
    const [job] = await this.db.select().from(batchJobs).where(eq(batchJobs.id, jobId));
    return job;
  }

  async get(jobId: string): Promise<{ job: BatchJobRow; results: BatchResultRow[] } | undefined> {
    const job = await this.job(jobId);
    if (!job) return undefined;
    return { job, results: await this.results(jobId) };
  }

  /** Results in arrival order, after result `afterId` (for live streams). */
  async results(jobId: string, afterId = 0, limit = 100_000): Promise<BatchResultRow[]> {
    return this.db
      .select()
      .from(batchResults)
      .where(and(eq(batchResults.jobId, jobId), gt(batchResults.id, afterId)))
      .orderBy(asc(batchResults.id))
      .limit(limit);
  }
}
