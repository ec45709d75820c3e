/** Users: accounts with a role and a scrypt password hash (rows; services/accounts.ts maps them). */
import { and, asc, count, eq, ne, sql } from 'drizzle-orm';
import { ConflictError } from '@opsplane/models';
import { sqlState, UNIQUE_VIOLATION, type Database } from './database.js';
import { users, type UserRow } from './schema.js';

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
}
