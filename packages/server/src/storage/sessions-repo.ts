/** UI sessions, keyed by the SHA-256 of the cookie value. */
import { and, eq, gt, lt, ne, sql } from 'drizzle-orm';
import type { Database } from './database.js';
import { sessions, users, type SessionRow, type UserRow } from './schema.js';

export class SessionsRepo {
  constructor(private readonly db: Database) {}

  async create(s: {
    idHash: string;
    userId: string;
    expiresAt: Date;
    ip?: string;
    userAgent?: string;
  }): Promise<SessionRow> {
    const [row] = await this.db
      .insert(sessions)
      .values({ ...s, ip: s.ip ?? null, userAgent: s.userAgent?.slice(0, 512) ?? null })
      .returning();
    return row as SessionRow;
  }

  /** The live session and its (enabled or not — the caller decides) user. */
  async findValid(
    idHash: string,
    now = new Date(),
  ): Promise<{ session: SessionRow; user: UserRow } | undefined> {
    const [row] = await this.db
      .select({ session: sessions, user: users })
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(and(eq(sessions.idHash, idHash), gt(sessions.expiresAt, now)));
    return row;
  }

  async touch(idHash: string): Promise<void> {
    await this.db
      .update(sessions)
      .set({ lastSeenAt: sql`now()` })
      .where(eq(sessions.idHash, idHash));
  }

  async delete(idHash: string): Promise<boolean> {
    const rows = await this.db
      .delete(sessions)
      .where(eq(sessions.idHash, idHash))
      .returning({ h: sessions.idHash });
    return rows.length > 0;
  }

  /** Ends every session of a user (password change, disable), optionally keeping one. */
  async deleteForUser(userId: string, keepIdHash?: string): Promise<number> {
    const cond = keepIdHash
      ? and(eq(sessions.userId, userId), ne(sessions.idHash, keepIdHash))
      : eq(sessions.userId, userId);
    const rows = await this.db.delete(sessions).where(cond).returning({ h: sessions.idHash });
    return rows.length;
  }

  async purgeExpired(now = new Date()): Promise<number> {
    const rows = await this.db
      .delete(sessions)
      .where(lt(sessions.expiresAt, now))
      .returning({ h: sessions.idHash });
    return rows.length;
  }
}
