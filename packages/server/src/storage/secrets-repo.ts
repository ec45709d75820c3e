/**
 * Named secrets (per-area agent secret, controller API token, …), encrypted with the master key
 * and bound to their scope/name. Plain settings live next door in SettingsRepo.
 */
import { randomBytes } from 'node:crypto';
import { and, asc, eq, sql } from 'drizzle-orm';
import type { SecretBox } from '../security/crypto.js';
import type { Database } from './database.js';
import { secrets, settings } from './schema.js';

/** Well-known per-area secrets. */
export const AREA_SECRET = {
  /** HMAC secret agents of the area authenticate with. */
  agentSecret: 'agent_secret',
  /** Bearer token the platform presents to the area's controllers. */
  controllerToken: 'controller_token',
} as const;
export type AreaSecretKind = (typeof AREA_SECRET)[keyof typeof AREA_SECRET];

export const areaScope = (area: string) => `area/${area}`;
const aad = (scope: string, name: string) => `secret:${scope}:${name}`;

export class SecretsRepo {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
  ) {}

  async put(scope: string, name: string, value: string): Promise<void> {
    const ciphertext = this.box.encrypt(value, aad(scope, name));
    await this.db
      .insert(secrets)
      .values({ scope, name, ciphertext })
      .onConflictDoUpdate({
        target: [secrets.scope, secrets.name],
        set: { ciphertext, updatedAt: sql`now()` },
      });
  }

  /** The decrypted value, or undefined. Call only where the secret is actually used. */
  async get(scope: string, name: string): Promise<string | undefined> {
    const [row] = await this.db
      .select({ c: secrets.ciphertext })
      .from(secrets)
      .where(and(eq(secrets.scope, scope), eq(secrets.name, name)));
    return row && this.box.decrypt(row.c, aad(scope, name));
  }

  /** Names only, never values. */
  async list(scope?: string): Promise<{ scope: string; name: string; updated_at: string }[]> {
    const q = this.db
      .select({ scope: secrets.scope, name: secrets.name, at: secrets.updatedAt })
      .from(secrets);
    const rows = await (scope ? q.where(eq(secrets.scope, scope)) : q).orderBy(
      asc(secrets.scope),
      asc(secrets.name),
    );
    return rows.map((r) => ({ scope: r.scope, name: r.name, updated_at: r.at.toISOString() }));
  }

  async delete(scope: string, name: string): Promise<boolean> {
    const rows = await this.db
      .delete(secrets)
      .where(and(eq(secrets.scope, scope), eq(secrets.name, name)))
      .returning({ n: secrets.name });
    return rows.length > 0;
  }

  /**
   * The secret `scope`/`name`, created with `make()` when absent. Replicas racing: the first
   * insert wins and every one returns what is stored.
   */
  async ensure(scope: string, name: string, make: () => string): Promise<string> {
    const have = await this.get(scope, name);
    if (have !== undefined) return have;
    const ciphertext = this.box.encrypt(make(), aad(scope, name));
    await this.db.insert(secrets).values({ scope, name, ciphertext }).onConflictDoNothing();
    return (await this.get(scope, name)) as string;
  }

  /** The area's secret of `kind`, created (32 random bytes, base64url) on first use. */
  async ensureAreaSecret(area: string, kind: AreaSecretKind): Promise<string> {
    const scope = areaScope(area);
    const have = await this.get(scope, kind);
    if (have !== undefined) return have;
    const value = randomBytes(32).toString('base64url');
    const ciphertext = this.box.encrypt(value, aad(scope, kind));
    // Two servers racing: the first insert wins and both return what is stored.
    await this.db.insert(secrets).values({ scope, name: kind, ciphertext }).onConflictDoNothing();
    return (await this.get(scope, kind)) as string;
  }
}

export class SettingsRepo {
  constructor(private readonly db: Database) {}

  async get<T>(key: string): Promise<T | undefined> {
    const [row] = await this.db.select({ v: settings.value }).from(settings).where(eq(settings.key, key));
    return row?.v as T | undefined;
  }

  async put(key: string, value: unknown): Promise<void> {
    await this.db
      .insert(settings)
      .values({ key, value })
      .onConflictDoUpdate({ target: settings.key, set: { value, updatedAt: sql`now()` } });
  }
}
