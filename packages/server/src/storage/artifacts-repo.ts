/**
 * Artifacts' metadata rows (always in the database). Their content is an ArtifactContentStore's
 * (artifact-content-store.ts): chunks in this database, or objects in an S3 store. A row is
 * `complete` once its content is stored; only complete rows are ever served.
 */
import { and, asc, count, desc, eq, type SQL } from 'drizzle-orm';
import type { Database } from './database.js';
import { artifacts, type ArtifactRow } from './distribution-schema.js';

export type NewArtifact = Omit<ArtifactRow, 'createdAt' | 'complete'>;

export interface ArtifactFilter {
  kind?: string | undefined;
  name?: string | undefined;
  version?: string | undefined;
}

export class ArtifactsRepo {
  constructor(private readonly db: Database) {}

  async get(sha256: string): Promise<ArtifactRow | undefined> {
    const [row] = await this.db
      .select()
      .from(artifacts)
      .where(and(eq(artifacts.sha256, sha256), eq(artifacts.complete, true)));
    return row;
  }

  /** The artifact stored under this identity (complete or not). */
  async byIdentity(a: Pick<NewArtifact, 'kind' | 'name' | 'version' | 'os' | 'arch'>) {
    const [row] = await this.db
      .select()
      .from(artifacts)
      .where(
        and(
          eq(artifacts.kind, a.kind),
          eq(artifacts.name, a.name),
          eq(artifacts.version, a.version),
          eq(artifacts.os, a.os),
          eq(artifacts.arch, a.arch),
        ),
      );
    return row;
  }

  /** Every complete artifact of a kind, name and version (all os/arch). */
  candidates(kind: string, name: string, version: string): Promise<ArtifactRow[]> {
    return this.db
      .select()
      .from(artifacts)
      .where(
        and(
          eq(artifacts.kind, kind),
          eq(artifacts.name, name),
          eq(artifacts.version, version),
          eq(artifacts.complete, true),
        ),
      );
  }

  async list(
    f: ArtifactFilter,
    page: number,
    pageSize: number,
  ): Promise<{ rows: ArtifactRow[]; total: number }> {
    const conds: SQL[] = [eq(artifacts.complete, true)];
    if (f.kind) conds.push(eq(artifacts.kind, f.kind));
    if (f.name) conds.push(eq(artifacts.name, f.name));
    if (f.version) conds.push(eq(artifacts.version, f.version));
    const where = and(...conds);
    const rows = await this.db
      .select()
      .from(artifacts)
      .where(where)
      .orderBy(desc(artifacts.createdAt), asc(artifacts.sha256))
      .limit(pageSize)
      .offset((page - 1) * pageSize);
    const [n] = await this.db.select({ n: count() }).from(artifacts).where(where);
    return { rows, total: Number(n?.n ?? 0) };
  }

  /** Inserts an artifact's row, not complete yet (its content is stored next). */
  async insert(a: NewArtifact): Promise<void> {
    await this.db.insert(artifacts).values({ ...a, complete: false });
  }

  async markComplete(sha256: string): Promise<ArtifactRow> {
    const [row] = await this.db
      .update(artifacts)
      .set({ complete: true })
      .where(eq(artifacts.sha256, sha256))
      .returning();
    return row as ArtifactRow;
  }

  async delete(sha256: string): Promise<boolean> {
    const rows = await this.db
      .delete(artifacts)
      .where(eq(artifacts.sha256, sha256))
      .returning({ s: artifacts.sha256 });
    return rows.length > 0;
  }
}
