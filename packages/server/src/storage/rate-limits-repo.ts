/** Fixed-window counters in the database, so that every server replica counts together. */
import { sql } from 'drizzle-orm';
import { queryRows, type Database } from './database.js';

export class RateLimitsRepo {
  constructor(private readonly db: Database) {}

  /** Counts one hit of `key` in its current window; returns the count and when the window ends. */
  async hit(key: string, windowMs: number): Promise<{ count: number; resetAt: Date }> {
    const [row] = await queryRows<{ count: number; reset_at: Date | string }>(
      this.db,
      sql`INSERT INTO rate_limits (key, count, reset_at)
        VALUES (${key}, 1, now() + make_interval(secs => ${windowMs / 1000}))
        ON CONFLICT (key) DO UPDATE SET
          count = CASE WHEN rate_limits.reset_at <= now() THEN 1 ELSE rate_limits.count + 1 END,
          reset_at = CASE WHEN rate_limits.reset_at <= now()
            THEN now() + make_interval(secs => ${windowMs / 1000}) ELSE rate_limits.reset_at END
        RETURNING count, reset_at`,
    );
    return { count: Number(row?.count ?? 1), resetAt: new Date(row?.reset_at ?? Date.now() + windowMs) };
  }

  async purgeExpired(): Promise<void> {
    await this.db.execute(sql`DELETE FROM rate_limits WHERE reset_at < now() - interval '1 hour'`);
  }
}
