/**
 * Where artifacts' CONTENT lives (their metadata rows are always in the database): the seam
 * between the artifact service and a content store, and the database implementation — the
 * content as chunks of ARTIFACT_CHUNK_BYTES in artifact_chunks, next to the row. The S3
 * implementation is s3-content-store.ts.
 */
import { and, eq } from 'drizzle-orm';
import type { Database } from './database.js';
import { artifactChunks } from './distribution-schema.js';

/** Size of one stored chunk in the database (the last one may be shorter). */
export const ARTIFACT_CHUNK_BYTES = 1024 * 1024;

export interface ArtifactContentStore {
  /** 'database' content is written in the row's transaction; 'external' content before it. */
  readonly placement: 'database' | 'external';
  /** Stores `size` bytes under `sha256`; `chunks` yields them in order. */
  put(sha256: string, chunks: AsyncIterable<Buffer>, size: number): Promise<void>;
  /** The bytes [start, end] (inclusive), a piece at a time. */
  read(sha256: string, start: number, end: number): AsyncGenerator<Buffer>;
  delete(sha256: string): Promise<void>;
}

/** How a Store gets its content store for a connection or a transaction. */
export type ContentStoreFactory = (db: Database) => ArtifactContentStore;

export const databaseContent: ContentStoreFactory = (db) => new DatabaseContentStore(db);

/**
 * Content as chunks in the database (every replica serves every artifact; PGlite and PostgreSQL
 * alike). In and out a chunk at a time, so an artifact is never held whole in memory here. The
 * artifact's row must exist first (the chunks reference it, and go with it on delete).
 */
export class DatabaseContentStore implements ArtifactContentStore {
  readonly placement = 'database';
  constructor(private readonly db: Database) {}

  async put(sha256: string, chunks: AsyncIterable<Buffer>): Promise<void> {
    let seq = 0;
    for await (const data of rechunk(chunks)) {
      await this.db.insert(artifactChunks).values({ sha256, seq, data });
      seq++;
    }
  }

  /** One query per chunk: a 100 MB artifact never sits in memory. */
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

  async delete(sha256: string): Promise<void> {
    await this.db.delete(artifactChunks).where(eq(artifactChunks.sha256, sha256));
  }
}

/** Any pieces → pieces of exactly ARTIFACT_CHUNK_BYTES (the last one shorter): chunk seq = offset. */
async function* rechunk(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let n = 0;
  for await (const piece of src) {
    let p = piece;
    while (p.length > 0) {
      const take = Math.min(p.length, ARTIFACT_CHUNK_BYTES - n);
      pending.push(p.subarray(0, take));
      n += take;
      p = p.subarray(take);
      if (n === ARTIFACT_CHUNK_BYTES) {
        yield Buffer.concat(pending);
        pending = [];
        n = 0;
      }
    }
  }
  if (n > 0) yield Buffer.concat(pending);
}
