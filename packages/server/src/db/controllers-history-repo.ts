/**
 * When each controller came and went, as discovery saw it. One open row (went_at null) per
 * present controller, enforced by a partial unique index. Filled by the discovery wiring
 * (next round); the repository is here so the schema is exercised now.
 */
import { and, desc, eq, isNull, sql } from 'drizzle-orm';
import type { Database } from './database.js';
import { controllersHistory, type ControllerHistoryRow } from './schema.js';

export class ControllersHistoryRepo {
  constructor(private readonly db: Database) {}

  /** Opens a row if none is open for area/id, else refreshes address/version/last_seen. */
  async seen(c: { area: string; id: string; address: string; version?: string }): Promise<void> {
    const updated = await this.db
      .update(controllersHistory)
      .set({ address: c.address, version: c.version ?? '', lastSeenAt: sql`now()` })
      .where(
        and(
          eq(controllersHistory.area, c.area),
          eq(controllersHistory.controllerId, c.id),
          isNull(controllersHistory.wentAt),
        ),
      )
      .returning({ id: controllersHistory.id });
    if (updated.length > 0) return;
    await this.db
      .insert(controllersHistory)
      .values({ area: c.area, controllerId: c.id, address: c.address, version: c.version ?? '' })
      .onConflictDoNothing();
  }

  /** Closes the open row of area/id (controller left discovery). */
  async gone(area: string, id: string): Promise<boolean> {
    const rows = await this.db
      .update(controllersHistory)
      .set({ wentAt: sql`now()` })
      .where(
        and(
          eq(controllersHistory.area, area),
          eq(controllersHistory.controllerId, id),
          isNull(controllersHistory.wentAt),
        ),
      )
      .returning({ id: controllersHistory.id });
    return rows.length > 0;
  }

  list(
    filter: { area?: string; controllerId?: string; limit?: number } = {},
  ): Promise<ControllerHistoryRow[]> {
    const conds = [];
    if (filter.area) conds.push(eq(controllersHistory.area, filter.area));
    if (filter.controllerId) conds.push(eq(controllersHistory.controllerId, filter.controllerId));
    return this.db
      .select()
      .from(controllersHistory)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(desc(controllersHistory.cameAt), desc(controllersHistory.id))
      .limit(filter.limit ?? 500);
  }
}
