/**
 * Artifact content in an S3-compatible object store: one object per artifact at
 * `<prefix>artifacts/<sha256>`, written before the artifact's row (a crash leaves at most an
 * orphan object, never a row without content) and deleted after it. Also watches whether the
 * bucket is reachable, so the server starts (and says so clearly) while the store is down.
 */
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { ArtifactContentStore } from './artifact-content-store.js';
import { failure, S3Client, S3StoreError, type S3ClientOptions } from './s3-client.js';

export interface S3ContentStoreOptions extends S3ClientOptions {
  prefix: string;
}

export class S3ContentStore implements ArtifactContentStore {
  readonly placement = 'external';
  readonly client: S3Client;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: S3ContentStoreOptions,
    private readonly logger: Logger,
  ) {
    this.client = new S3Client(o);
  }

  key(sha256: string): string {
    return `${this.o.prefix}artifacts/${sha256}`;
  }

  /** The payload hash SigV4 signs is the artifact's own sha256 (known before the upload). */
  async put(sha256: string, chunks: AsyncIterable<Buffer>, size: number): Promise<void> {
    await this.client.call('PUT', this.key(sha256), {
      headers: { 'content-length': String(size), 'content-type': 'application/gzip' },
      body: Readable.from(chunks),
      payloadSha256: sha256,
      ok: [200],
    });
  }

  async *read(sha256: string, start: number, end: number): AsyncGenerator<Buffer> {
    let res;
    try {
      res = await this.client.call('GET', this.key(sha256), {
        headers: { range: `bytes=${start}-${end}` },
        ok: [200, 206],
      });
    } catch (e) {
      if (e instanceof S3StoreError && e.s3Status === 404)
        throw new S3StoreError(
          'artifact_content_missing',
          `artifact ${sha256}: its object ${this.key(sha256)} is missing from the artifact store`,
          404,
        );
      throw e;
    }
    // A store that ignores Range answers 200 with everything: cut the range out ourselves.
    let skip = res.status === 200 ? start : 0;
    let left = end - start + 1;
    try {
      for await (const piece of res.body as AsyncIterable<Buffer>) {
        let p = piece;
        if (skip > 0) {
          const s = Math.min(skip, p.length);
          p = p.subarray(s);
          skip -= s;
        }
        if (p.length === 0) continue;
        if (p.length > left) p = p.subarray(0, left);
        left -= p.length;
        yield p;
        if (left === 0) break;
      }
    } catch (e) {
      throw new S3StoreError(
        'artifact_store_unavailable',
        `reading ${this.key(sha256)} from the artifact store: ${failure(e)}`,
      );
    } finally {
      res.body.destroy();
    }
    if (left > 0)
      throw new S3StoreError(
        'artifact_store_unavailable',
        `the artifact store sent ${end - start + 1 - left} of ${end - start + 1} bytes of ${this.key(sha256)}`,
      );
  }

  /** Deleting an object that is not there is fine (S3 answers 204 either way). */
  async delete(sha256: string): Promise<void> {
    const res = await this.client.call('DELETE', this.key(sha256), { ok: [200, 204, 404] });
    await res.body.dump();
  }

  /** Whether the object is stored (HEAD object). */
  async has(sha256: string): Promise<boolean> {
    const res = await this.client.call('HEAD', this.key(sha256), { ok: [200, 404] });
    await res.body.dump();
    return res.status === 200;
  }

  /** HEAD bucket: throws an S3StoreError saying what is wrong. */
  async check(): Promise<void> {
    const res = await this.client.call('HEAD', undefined, { ok: [200] });
    await res.body.dump();
  }

  /**
   * Checks the bucket now and, while it fails, every `retryMs` (logging the first failure and
   * recovery); artifact calls meanwhile answer 503 from their own S3 errors. Never throws, so a
   * store that is down does not crash-loop the server.
   */
  async watch(retryMs = 5_000): Promise<boolean> {
    const where = this.client.describe();
    try {
      await this.check();
      this.logger.info({ store: where }, 'artifact store reachable');
      return true;
    } catch (e) {
      const err = e as S3StoreError;
      this.logger.error(
        { store: where, code: err.code, err: err.message },
        'artifact store NOT reachable: artifact uploads and downloads answer 503 until it is',
      );
    }
    const retry = () => {
      this.timer = setTimeout(() => {
        this.check().then(
          () => {
            this.timer = undefined;
            this.logger.info({ store: where }, 'artifact store reachable now');
          },
          () => retry(),
        );
      }, retryMs);
      this.timer.unref();
    };
    retry();
    return false;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.client.close();
  }
}
