/**
 * The webhook outbox: notifications written in the same transaction as the change they report
 * (so none is lost to a crash), delivered at least once by the leader, retried with backoff.
 * (key, target) is unique: the same event never queues twice for one webhook.
 */
import { and, asc, eq, lte, sql } from 'drizzle-orm';
import type { Database } from './database.js';
import { outbox, type OutboxRow } from './schema.js';

export class OutboxRepo {
  constructor(private readonly db: Database) {}

  async enqueue(
    items: readonly { key: string; target: number; event: string; payload: Record<string, unknown> }[],
  ): Promise<void> {
    if (items.length === 0) return;
    await this.db
      .insert(outbox)
      .values([...items])
      .onConflictDoNothing();
  }

  /**
   * Pending rows due now, oldest first — but never one whose earlier row for the same key prefix
   * (the same alert) and target is still pending: a `resolved` does not overtake its `firing`.
   */
  async due(limit = 100): Promise<OutboxRow[]> {
    return this.db
      .select()
      .from(outbox)
      .where(
        and(
          eq(outbox.status, 'pending'),
          lte(outbox.nextAttemptAt, sql`now()`),
          sql`NOT EXISTS (SELECT 1 FROM outbox o WHERE o.status = 'pending' AND o.target = ${outbox.target}
            AND split_part(o.key, ':', 2) = split_part(${outbox.key}, ':', 2) AND o.id < ${outbox.id})`,
        ),
      )
      .orderBy(asc(outbox.id))
      .limit(limit);
  }

  async delivered(id: number): Promise<void> {
    await this.db
      .update(outbox)
      .set({
        status: 'delivered',
        deliveredAt: sql`now()`,
        attempts: sql`${outbox.attempts} + 1`,
        lastError: null,
      })
      .where(eq(outbox.id, id));
  }

  /** A failed attempt: tried again after `retryInMs`, or given up (`failed`). */
  async attemptFailed(id: number, error: string, retryInMs: number | undefined): Promise<void> {
    await this.db
      .update(outbox)
      .set({
        attempts: sql`${outbox.attempts} + 1`,
        lastError: error.slice(0, 1000),
        ...(retryInMs === undefined
          ? { status: 'failed' }
          : { nextAttemptAt: sql`now() + make_interval(secs => ${retryInMs / 1000})` }),
      })
      .where(eq(outbox.id, id));
  }

  async all(): Promise<OutboxRow[]> {
    return this.db.select().from(outbox).orderBy(asc(outbox.id));
  }
}
