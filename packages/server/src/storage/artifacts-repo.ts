/**
 * Artifacts: metadata rows and their content as chunks in the database (every replica serves
 * every artifact; PGlite and PostgreSQL alike). Content goes in chunk by chunk and comes out as
 * a stream of chunks, so no artifact is ever held whole in memory by the repository.
 */
import { and, asc, count, desc, eq, type SQL } from 'drizzle-orm';
import type { Database } from './database.js';
import { artifactChunks, artifacts, type ArtifactRow } from './distribution-schema.js';

/** Size of one stored chunk (the last one may be shorter). */
export const ARTIFACT_CHUNK_BYTES = 1024 * 1024;

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

  /**
   * Stores an artifact and its content in one transaction of the caller's (so a failed upload
   * leaves nothing). `chunks` yields the content in order, ARTIFACT_CHUNK_BYTES at a time.
   */
  async insert(a: NewArtifact, chunks: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<ArtifactRow> {
    await this.db.insert(artifacts).values({ ...a, complete: false });
    let seq = 0;
    for await (const data of chunks) {
      await this.db.insert(artifactChunks).values({ sha256: a.sha256, seq, data });
      seq++;
    }
    const [row] = await this.db
      .update(artifacts)
      .set({ complete: true })
      .where(eq(artifacts.sha256, a.sha256))
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

  /**
   * The bytes [start, end] (inclusive) of an artifact, a chunk at a time (one query per chunk:
   * a 100 MB artifact never sits in memory).
   */
  async *read(sha256: string, start: number, end: number): AsyncGenerator<Buffer> {
    const first = Math.floor(start / ARTIFACT_CHUNK_BYTES);
    const last = Math.floor(end / ARTIFACT_CHUNK_BYTES);
    for (let seq = first; seq <= last; seq++) {
      const [row] = await this.db
        .select({ data: artifactChunks.data })
        .from(artifactChunks)
        .where(and(eq(artifactChunks.sha256, sha256), eq(artifactChunks.seq, seq)));
      if (!row) throw new Error(`artifact ${sha256}: chunk ${seq} is missing`);
      const base = seq * ARTIFACT_CHUNK_BYTES;
      const from = Math.max(0, start - base);
      const to = Math.min(row.data.length, end - base + 1);
      yield row.data.subarray(from, to);
    }
  }
}
