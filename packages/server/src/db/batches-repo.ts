/**
 * Batch jobs and their per-(agent, package) results, for the cross-area batch routes of the next
 * round: create a job when the request arrives, add results as areas answer, finish it.
 */
import { asc, eq, sql } from 'drizzle-orm';
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
