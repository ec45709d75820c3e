/**
 * When each controller came and went, as discovery saw it. One open row (went_at null) per
 * present controller, enforced by a partial unique index. Filled by the discovery wiring
 * (services/controller-tracker.ts).
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

  /**
   * Closes every open row whose `area/id` is not in `present` — controllers that went while no
   * server was watching. Returns the keys closed.
   */
  async closeAllExcept(present: ReadonlySet<string>): Promise<string[]> {
    const open = await this.db
      .select({
        id: controllersHistory.id,
        area: controllersHistory.area,
        cid: controllersHistory.controllerId,
      })
      .from(controllersHistory)
      .where(isNull(controllersHistory.wentAt));
    const closed: string[] = [];
    for (const r of open) {
      const key = `${r.area}/${r.cid}`;
      if (present.has(key)) continue;
      await this.db
        .update(controllersHistory)
        .set({ wentAt: sql`now()` })
        .where(and(eq(controllersHistory.id, r.id), isNull(controllersHistory.wentAt)));
      closed.push(key);
    }
    return closed;
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
