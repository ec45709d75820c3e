/** API tokens: stored as SHA-256 hashes, revocable, optionally expiring, capped by a role. */
import { and, desc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import type { Database } from './database.js';
import { apiTokens, users, type ApiTokenRow, type UserRow } from './schema.js';

export class TokensRepo {
  constructor(private readonly db: Database) {}

  async create(t: {
    userId: string;
    name: string;
    role: string;
    tokenHash: string;
    prefix: string;
    expiresAt: Date | null;
    /** Scope: the areas it may change things in (null/absent = every area). */
    areas?: string[] | null;
  }): Promise<ApiTokenRow> {
    const [row] = await this.db.insert(apiTokens).values(t).returning();
    return row as ApiTokenRow;
  }

  /** A usable token (not revoked, not expired) and its owner. */
  async findActiveByHash(
    tokenHash: string,
    now = new Date(),
  ): Promise<{ token: ApiTokenRow; user: UserRow } | undefined> {
    const [row] = await this.db
      .select({ token: apiTokens, user: users })
      .from(apiTokens)
      .innerJoin(users, eq(users.id, apiTokens.userId))
      .where(
        and(
          eq(apiTokens.tokenHash, tokenHash),
          isNull(apiTokens.revokedAt),
          or(isNull(apiTokens.expiresAt), gt(apiTokens.expiresAt, now)),
        ),
      );
    return row;
  }

  async get(id: string): Promise<{ token: ApiTokenRow; username: string } | undefined> {
    const [row] = await this.db
      .select({ token: apiTokens, username: users.username })
      .from(apiTokens)
      .innerJoin(users, eq(users.id, apiTokens.userId))
      .where(eq(apiTokens.id, id));
    return row;
  }

  /** Tokens of one user, or of everyone when `userId` is undefined; newest first. */
  list(userId?: string): Promise<{ token: ApiTokenRow; username: string }[]> {
    const q = this.db
      .select({ token: apiTokens, username: users.username })
      .from(apiTokens)
      .innerJoin(users, eq(users.id, apiTokens.userId));
    return (userId ? q.where(eq(apiTokens.userId, userId)) : q).orderBy(
      desc(apiTokens.createdAt),
      desc(apiTokens.id),
    );
  }

  /** Marks the token revoked; false if it was unknown or already revoked. */
  async revoke(id: string): Promise<boolean> {
    const rows = await this.db
      .update(apiTokens)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
      .returning({ id: apiTokens.id });
    return rows.length > 0;
  }

  /** Revokes every usable token of a user (password change or reset, disable); how many. */
  async revokeForUser(userId: string): Promise<number> {
    const rows = await this.db
      .update(apiTokens)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
      .returning({ id: apiTokens.id });
    return rows.length;
  }

  async touch(id: string): Promise<void> {
    await this.db
      .update(apiTokens)
      .set({ lastUsedAt: sql`now()` })
      .where(eq(apiTokens.id, id));
  }
}
