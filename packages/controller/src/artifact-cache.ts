/**
 * The controller's artifact cache: content-addressed files under `artifacts.dir`, filled by the
 * platform (one copy per controller) and read by the area's agents.
 *
 * On disk: `<sha>.part` (+ `<sha>.part.json`, its ref) while an upload is incomplete — appended
 * at the offset the uploader states and fsynced, so a controller killed mid-upload keeps what it
 * had and HEAD reports it (the uploader resumes there). Once it holds `ref.size` bytes it hashes
 * them and (with pinned `keys`) checks the ref's signature; only then does it write
 * `<sha>.json` and rename the part to `<sha>` (atomic). Anything that does not verify is
 * deleted and never served. Beyond `max_bytes` the least recently used complete artifacts go.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { Gauge } from 'prom-client';
import {
  ArtifactRefSchema,
  OpsplaneError,
  Sha256Schema,
  verifyArtifactSignature,
  type ArtifactCacheEntry,
  type ArtifactCacheList,
  type ArtifactCacheStatus,
  type ArtifactRef,
} from '@opsplane/models';
import type { Logger } from '@opsplane/kit';
import type { ControllerMetrics } from './metrics.js';

export interface ArtifactCacheOptions {
  dir: string;
  /** Pinned signing keys; empty = hash and size checked only. */
  keys: readonly string[];
  /** 0 = unlimited. */
  maxBytes: number;
  metrics: ControllerMetrics;
  logger: Logger;
}

interface Entry {
  sha256: string;
  bytes: number;
  complete: boolean;
  ref: ArtifactRef | undefined;
  lastUsedMs: number;
}

/** A complete artifact, ready to be read. */
export interface CachedArtifact {
  path: string;
  size: number;
  ref: ArtifactRef | undefined;
}

/** 409 `artifact_offset_mismatch`: the upload must resume at `bytes`. */
export class ArtifactOffsetError extends OpsplaneError {
  readonly bytes: number;
  constructor(sha256: string, offset: number, bytes: number) {
    super(
      'artifact_offset_mismatch',
      `upload of ${sha256.slice(0, 12)}… starts at offset ${offset}, but this controller holds ${bytes} bytes: resume at ${bytes}`,
      { status: 409, details: { bytes } },
    );
    this.bytes = bytes;
  }
}

const isSha = (s: string) => Sha256Schema.safeParse(s).success;

/** sha256 of a file, streamed. */
function hashFile(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 1024 * 1024 })
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

async function readRef(path: string): Promise<ArtifactRef | undefined> {
  try {
    const parsed = ArtifactRefSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export class ArtifactCache {
  readonly dir: string;
  private readonly opts: ArtifactCacheOptions;
  private readonly log: Logger;
  private readonly entries = new Map<string, Entry>();
  /** Artifacts with an upload in progress (one writer per artifact). */
  private readonly busy = new Set<string>();

  constructor(opts: ArtifactCacheOptions) {
    this.opts = opts;
    this.dir = opts.dir;
    this.log = opts.logger;
    const entries = this.entries;
    new Gauge({
      name: 'opsplane_controller_artifact_cache_bytes',
      help: 'Bytes held by the artifact cache (complete and partial)',
      registers: [opts.metrics.registry],
      collect() {
        let total = 0;
        for (const e of entries.values()) total += e.bytes;
        this.set(total);
      },
    });
  }

  /** Reads what an earlier run left: complete artifacts and partial uploads (the directory is made on first upload). */
  async open(): Promise<void> {
    if (this.opts.keys.length === 0) {
      this.log.warn(
        { dir: this.dir },
        'artifacts.keys is empty: artifact hashes and sizes are checked, signatures are NOT — pin the server key(s)',
      );
    }
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [] as string[];
      throw err;
    });
    for (const name of names) {
      const path = join(this.dir, name);
      if (name.endsWith('.tmp')) {
        await rm(path, { force: true });
        continue;
      }
      const sha = name.endsWith('.part') ? name.slice(0, -5) : name;
      if (!isSha(sha)) continue;
      const st = await stat(path).catch(() => undefined);
      if (!st?.isFile()) continue;
      if (name.endsWith('.part')) {
        // A complete copy wins over a leftover part.
        if (this.entries.get(sha)?.complete) continue;
        this.entries.set(sha, {
          sha256: sha,
          bytes: st.size,
          complete: false,
          ref: await readRef(`${path}.json`),
          lastUsedMs: st.mtimeMs,
        });
        continue;
      }
      const ref = await readRef(`${path}.json`);
      if (!ref || ref.sha256 !== sha || ref.size !== st.size) {
        // Only verified artifacts are renamed into place with their ref; anything else is debris.
        this.log.warn({ sha256: sha }, 'dropping a cached artifact without a matching ref');
        await rm(path, { force: true });
        await rm(`${path}.json`, { force: true });
        continue;
      }
      this.entries.set(sha, { sha256: sha, bytes: st.size, complete: true, ref, lastUsedMs: st.mtimeMs });
      await rm(`${path}.part`, { force: true });
      await rm(`${path}.part.json`, { force: true });
    }
    const complete = [...this.entries.values()].filter((e) => e.complete).length;
    this.log.info(
      { dir: this.dir, complete, partial: this.entries.size - complete },
      'artifact cache opened',
    );
  }

  status(sha256: string): ArtifactCacheStatus | undefined {
    const e = this.entries.get(sha256);
    return e ? { sha256, bytes: e.bytes, complete: e.complete } : undefined;
  }

  list(): ArtifactCacheList {
    const artifacts: ArtifactCacheEntry[] = [...this.entries.values()]
      .sort((a, b) => (a.sha256 < b.sha256 ? -1 : 1))
      .map((e) => ({
        sha256: e.sha256,
        bytes: e.bytes,
        complete: e.complete,
        ...(e.ref ? { ref: e.ref } : {}),
        last_used: new Date(e.lastUsedMs).toISOString(),
      }));
    return { artifacts, total_bytes: this.totalBytes(), max_bytes: this.opts.maxBytes };
  }

  /** A complete, verified artifact (and marks it used), or undefined. */
  get(sha256: string): CachedArtifact | undefined {
    const e = this.entries.get(sha256);
    if (!e?.complete) return undefined;
    e.lastUsedMs = Date.now();
    return { path: join(this.dir, sha256), size: e.bytes, ref: e.ref };
  }

  private totalBytes(): number {
    let total = 0;
    for (const e of this.entries.values()) total += e.bytes;
    return total;
  }

  private refuse(code: string, message: string, status = 422): OpsplaneError {
    this.opts.metrics.artifactVerificationFailures.inc({ code });
    return new OpsplaneError(code, message, { status });
  }

  /**
   * Appends `body` (the artifact's bytes from `offset`) to what is held. Resolves with the
   * status after it: complete once all bytes arrived and verified. A body that ends early
   * (the uploader went away) keeps what arrived, for a later resume.
   */
  async write(
    ref: ArtifactRef,
    offset: number,
    body: AsyncIterable<Uint8Array>,
  ): Promise<ArtifactCacheStatus> {
    const sha = ref.sha256;
    const m = this.opts.metrics;
    if (this.opts.keys.length > 0) {
      // The signature covers the metadata only, so it can be checked before any byte is stored.
      const trust = verifyArtifactSignature(ref, this.opts.keys);
      if (!trust.ok) {
        m.artifactUploads.inc({ outcome: 'invalid' });
        throw this.refuse(trust.code, trust.message);
      }
    }
    const existing = this.entries.get(sha);
    if (existing?.complete) {
      m.artifactUploads.inc({ outcome: 'already_complete' });
      return { sha256: sha, bytes: existing.bytes, complete: true };
    }
    if (this.opts.maxBytes > 0 && ref.size > this.opts.maxBytes) {
      m.artifactUploads.inc({ outcome: 'too_large' });
      throw new OpsplaneError(
        'artifact_too_large',
        `the artifact is ${ref.size} bytes; this controller's cache holds at most ${this.opts.maxBytes} (artifacts.max_bytes)`,
        { status: 413 },
      );
    }
    if (this.busy.has(sha)) {
      m.artifactUploads.inc({ outcome: 'busy' });
      throw new OpsplaneError(
        'artifact_busy',
        `another upload of ${sha.slice(0, 12)}… is in progress on this controller; retry shortly`,
        { status: 409 },
      );
    }
    const held = existing?.bytes ?? 0;
    if (offset !== held) {
      m.artifactUploads.inc({ outcome: 'offset_mismatch' });
      throw new ArtifactOffsetError(sha, offset, held);
    }
    this.busy.add(sha);
    try {
      return await this.append(ref, held, body);
    } finally {
      this.busy.delete(sha);
    }
  }

  private async append(
    ref: ArtifactRef,
    start: number,
    body: AsyncIterable<Uint8Array>,
  ): Promise<ArtifactCacheStatus> {
    const sha = ref.sha256;
    const part = join(this.dir, `${sha}.part`);
    const entry: Entry = this.entries.get(sha) ?? {
      sha256: sha,
      bytes: 0,
      complete: false,
      ref,
      lastUsedMs: Date.now(),
    };
    entry.ref = ref;
    entry.lastUsedMs = Date.now();
    this.entries.set(sha, entry);
    if (start === 0) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeAtomic(`${part}.json`, JSON.stringify(ref));
    }
    const fh = await open(part, start === 0 ? 'w' : 'a');
    let overrun = false;
    let received = 0;
    let writeError: Error | undefined;
    try {
      for await (const chunk of body) {
        if (entry.bytes + chunk.length > ref.size) {
          overrun = true;
          break;
        }
        try {
          for (let done = 0; done < chunk.length;) {
            done += (await fh.write(chunk, done, chunk.length - done)).bytesWritten;
          }
        } catch (err) {
          writeError = err as Error;
          break;
        }
        entry.bytes += chunk.length;
        received += chunk.length;
      }
    } catch (err) {
      // The uploader went away mid-body: keep what arrived (fsynced below) for its resume.
      this.log.info(
        { sha256: sha, bytes: entry.bytes, err: (err as Error).message },
        'artifact upload interrupted',
      );
    } finally {
      await fh.sync().catch(() => undefined);
      await fh.close();
      this.opts.metrics.artifactBytesReceived.inc(received);
    }
    if (writeError) {
      // Disk full, say: keep the bytes written before the failing chunk, so the upload resumes there.
      await truncate(part, entry.bytes).catch(() => undefined);
      this.opts.metrics.artifactUploads.inc({ outcome: 'write_failed' });
      this.log.error({ sha256: sha, err: writeError.message }, 'artifact cache write failed');
      throw new OpsplaneError(
        'artifact_write_failed',
        `this controller could not store the artifact: ${writeError.message}`,
        { status: 507 },
      );
    }
    if (overrun) {
      // More bytes than the ref says: nothing this upload sent can be trusted.
      await truncate(part, start);
      entry.bytes = start;
      this.opts.metrics.artifactUploads.inc({ outcome: 'invalid' });
      throw this.refuse(
        'artifact_size_mismatch',
        `the upload carries more than the ${ref.size} bytes its ref states; its bytes were dropped`,
        400,
      );
    }
    if (entry.bytes < ref.size) {
      this.opts.metrics.artifactUploads.inc({ outcome: 'partial' });
      return { sha256: sha, bytes: entry.bytes, complete: false };
    }
    return this.complete(entry, ref, part);
  }

  /** All bytes are here: verify, then move into place — or drop them. */
  private async complete(entry: Entry, ref: ArtifactRef, part: string): Promise<ArtifactCacheStatus> {
    const sha = ref.sha256;
    const actual = await hashFile(part);
    if (actual !== sha) {
      this.entries.delete(sha);
      await rm(part, { force: true });
      await rm(`${part}.json`, { force: true });
      this.opts.metrics.artifactUploads.inc({ outcome: 'invalid' });
      this.log.warn(
        { sha256: sha, actual, name: ref.name, version: ref.version },
        'artifact refused: hash mismatch',
      );
      throw this.refuse(
        'artifact_invalid',
        `the ${ref.size} bytes received hash to ${actual.slice(0, 12)}…, not ${sha.slice(0, 12)}…: tampered or corrupted; dropped`,
      );
    }
    const final = join(this.dir, sha);
    await writeAtomic(`${final}.json`, JSON.stringify(ref));
    await rename(part, final);
    await rm(`${part}.json`, { force: true });
    entry.complete = true;
    entry.lastUsedMs = Date.now();
    this.opts.metrics.artifactUploads.inc({ outcome: 'complete' });
    this.log.info(
      { sha256: sha, name: ref.name, version: ref.version, bytes: ref.size },
      'artifact cached and verified',
    );
    await this.evict(sha);
    return { sha256: sha, bytes: entry.bytes, complete: true };
  }

  /** Evicts least recently used complete artifacts (never `keep`) while over max_bytes. */
  private async evict(keep: string): Promise<void> {
    if (this.opts.maxBytes <= 0) return;
    let total = this.totalBytes();
    const candidates = [...this.entries.values()]
      .filter((e) => e.complete && e.sha256 !== keep)
      .sort((a, b) => a.lastUsedMs - b.lastUsedMs);
    for (const e of candidates) {
      if (total <= this.opts.maxBytes) break;
      this.entries.delete(e.sha256);
      total -= e.bytes;
      // A download reading it keeps its open file; new ones get 404 until the platform re-sends it.
      await rm(join(this.dir, e.sha256), { force: true });
      await rm(join(this.dir, `${e.sha256}.json`), { force: true });
      this.log.info({ sha256: e.sha256, bytes: e.bytes }, 'artifact evicted (artifacts.max_bytes)');
    }
  }
}
