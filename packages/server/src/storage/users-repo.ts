/** Users: accounts with a role and a scrypt password hash (rows; services/accounts.ts maps them). */
import { and, asc, count, eq, inArray, ne, sql } from 'drizzle-orm';
import { ConflictError } from '@opsplane/models';
import { sqlState, UNIQUE_VIOLATION, type Database } from './database.js';
import { userAreaRoles, users, type UserRow } from './schema.js';

export interface UserPatch {
  role?: string;
  disabled?: boolean;
  passwordHash?: string;
}

export class UsersRepo {
  constructor(private readonly db: Database) {}

  async create(u: { username: string; role: string; passwordHash: string }): Promise<UserRow> {
    try {
      const [row] = await this.db.insert(users).values(u).returning();
      return row as UserRow;
    } catch (e) {
      if (sqlState(e) === UNIQUE_VIOLATION) throw new ConflictError(`user '${u.username}' already exists`);
      throw e;
    }
  }

  async get(id: string): Promise<UserRow | undefined> {
    const [row] = await this.db.select().from(users).where(eq(users.id, id));
    return row;
  }

  async getByUsername(username: string): Promise<UserRow | undefined> {
    const [row] = await this.db.select().from(users).where(eq(users.username, username));
    return row;
  }

  list(): Promise<UserRow[]> {
    return this.db.select().from(users).orderBy(asc(users.username));
  }

  async count(): Promise<number> {
    const [row] = await this.db.select({ n: count() }).from(users);
    return row?.n ?? 0;
  }

  /** Enabled admins other than `exceptId` (to refuse removing the last one). */
  async countActiveAdmins(exceptId?: string): Promise<number> {
    const conds = [eq(users.role, 'admin'), eq(users.disabled, false)];
    if (exceptId) conds.push(ne(users.id, exceptId));
    const [row] = await this.db
      .select({ n: count() })
      .from(users)
      .where(and(...conds));
    return row?.n ?? 0;
  }

  async update(id: string, patch: UserPatch): Promise<UserRow | undefined> {
    const [row] = await this.db
      .update(users)
      .set({ ...patch, updatedAt: sql`now()` })
      .where(eq(users.id, id))
      .returning();
    return row;
  }

  async recordLogin(id: string): Promise<void> {
    await this.db
      .update(users)
      .set({ lastLoginAt: sql`now()` })
      .where(eq(users.id, id));
  }

  async delete(id: string): Promise<boolean> {
    const rows = await this.db.delete(users).where(eq(users.id, id)).returning({ id: users.id });
    return rows.length > 0;
  }

  /** The user's roles per area (only where they differ from users.role). */
  async areaRoles(userId: string): Promise<Record<string, string>> {
    const rows = await this.db
      .select({ area: userAreaRoles.area, role: userAreaRoles.role })
      .from(userAreaRoles)
      .where(eq(userAreaRoles.userId, userId));
    return Object.fromEntries(rows.map((r) => [r.area, r.role]));
  }

  /** areaRoles() of many users at once (users without any are absent). */
  async areaRolesOf(userIds: readonly string[]): Promise<Map<string, Record<string, string>>> {
    const out = new Map<string, Record<string, string>>();
    if (userIds.length === 0) return out;
    const rows = await this.db
      .select()
      .from(userAreaRoles)
      .where(inArray(userAreaRoles.userId, [...userIds]))
      .orderBy(asc(userAreaRoles.area));
    for (const r of rows) (out.get(r.userId) ?? out.set(r.userId, {}).get(r.userId)!)[r.area] = r.role;
    return out;
  }

  /** Sets (a role) or removes (null) the user's role in each named area; other areas keep theirs. */
  async setAreaRoles(userId: string, patch: Readonly<Record<string, string | null>>): Promise<void> {
    for (const [area, role] of Object.entries(patch)) {
      if (role === null) {
        await this.db
          .delete(userAreaRoles)
          .where(and(eq(userAreaRoles.userId, userId), eq(userAreaRoles.area, area)));
      } else {
        await this.db
          .insert(userAreaRoles)
          .values({ userId, area, role })
          .onConflictDoUpdate({ target: [userAreaRoles.userId, userAreaRoles.area], set: { role } });
      }
    }
  }
}
