/**
 * Batch jobs and their per-(agent, package) results, for the cross-area batch routes: create a
 * job when the request arrives, add the results when the batch is done, finish it.
 */
import { and, asc, count, desc, eq, sql, type SQL } from 'drizzle-orm';
import type { OperationResult } from '@opsplane/models';
import type { Database } from './database.js';
import { batchJobs, batchResults, type BatchJobRow, type BatchResultRow } from './schema.js';

const CHUNK = 500;

export class BatchesRepo {
  constructor(private readonly db: Database) {}

  async create(job: {
    action: string;
    requestedBy: string;
    request: Record<string, unknown>;
  }): Promise<BatchJobRow> {
    const [row] = await this.db.insert(batchJobs).values(job).returning();
    return row as BatchJobRow;
  }

  async addResults(jobId: string, results: readonly (OperationResult & { area?: string })[]): Promise<void> {
    for (let i = 0; i < results.length; i += CHUNK) {
      await this.db.insert(batchResults).values(
        results.slice(i, i + CHUNK).map((r) => ({
          jobId,
          agentCode: r.agent_code,
          package: r.package,
          area: r.area ?? null,
          success: r.success,
          error: r.error ?? null,
          message: r.message ?? null,
        })),
      );
    }
  }

  async finish(
    jobId: string,
    status: 'done' | 'failed',
    counts: { total: number; success: number; failed: number; durationMs: number },
  ) {
    const [row] = await this.db
      .update(batchJobs)
      .set({
        status,
        total: counts.total,
        success: counts.success,
        failed: counts.failed,
        durationMs: counts.durationMs,
        finishedAt: sql`now()`,
      })
      .where(eq(batchJobs.id, jobId))
      .returning();
    return row;
  }

  /**
   * Jobs still `running` when a server starts were cut off by a crash of the previous one (a
   * graceful stop finishes them): their outcome on the agents is unknown, so they are marked
   * `interrupted` rather than left running forever. Assumes one server per database.
   */
  async markInterrupted(): Promise<number> {
    const rows = await this.db
      .update(batchJobs)
      .set({ status: 'interrupted', finishedAt: sql`now()` })
      .where(eq(batchJobs.status, 'running'))
      .returning({ id: batchJobs.id });
    return rows.length;
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

  async get(jobId: string): Promise<{ job: BatchJobRow; results: BatchResultRow[] } | undefined> {
    const [job] = await this.db.select().from(batchJobs).where(eq(batchJobs.id, jobId));
    if (!job) return undefined;
    const results = await this.db
      .select()
      .from(batchResults)
      .where(eq(batchResults.jobId, jobId))
      .orderBy(asc(batchResults.id));
    return { job, results };
  }
}
