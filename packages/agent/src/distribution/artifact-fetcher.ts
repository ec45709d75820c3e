/**
 * Downloads artifacts from the controller the agent is connected to NOW
 * (`GET <controller>${AGENT_ARTIFACT_PATH}/<sha256>`, authenticated like the WebSocket upgrade:
 * token header and/or client certificate, pinned CA) into data_dir/downloads/<sha>.part. Any
 * failure — a dropped connection, a controller restart, a failover to another controller — is
 * retried with backoff and resumes with `Range: bytes=<have>-`. The bytes are trusted only
 * after the signature (checked before the first byte is fetched), size and sha256 all match;
 * only then is the file renamed to downloads/<sha> for the installer.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, truncate } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AGENT_ARTIFACT_PATH, verifyArtifactSignature, type ArtifactRef } from '@opsplane/models';
import { backoffDelay, sleep } from '@opsplane/kit';
import type { Logger } from '../log.js';
import { DistributionError, SupersededError } from './errors.js';

/** How to reach the current controller (the ControllerLink's view). */
export interface ArtifactSource {
  /** Base URL of the controller connected now; undefined while disconnected. */
  controllerUrl(): string | undefined;
  /** The upgrade's authentication headers (agent code, area, bearer token). */
  headers(): Record<string, string>;
  /** Pinned CA and client certificate, as for the WebSocket. */
  tls(): { ca: string; cert?: string; key?: string } | undefined;
}

export interface FetcherOptions {
  dataDir: string;
  trustedKeys: readonly string[];
  source: ArtifactSource;
  logger: Logger;
  /** Backoff between attempts. */
  retry?: { initialMs: number; maxMs: number };
  /** Consecutive 4xx answers (other than 416) after which the download fails for good. */
  maxClientErrors?: number;
  /** Progress and transient problems, for the status. */
  onProgress?: (ref: ArtifactRef, bytes: number, problem?: string) => void;
}

/** `ws(s)://` or bare `host:port` → the http(s) base of the controller. */
export function httpBase(base: string): URL {
  const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(base) ? base : `http://${base}`);
  if (u.protocol === 'ws:') u.protocol = 'http:';
  else if (u.protocol === 'wss:') u.protocol = 'https:';
  u.pathname = u.pathname.replace(/\/api\/v1\/agents\/connect\/?$/, '').replace(/\/+$/, '');
  u.search = '';
  u.hash = '';
  return u;
}

class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class ArtifactFetcher {
  readonly downloadsDir: string;
  private readonly retry: { initialMs: number; maxMs: number };

  constructor(private readonly opts: FetcherOptions) {
    this.downloadsDir = join(opts.dataDir, 'downloads');
    this.retry = opts.retry ?? { initialMs: 500, maxMs: 15_000 };
  }

  partPath(sha256: string): string {
    return join(this.downloadsDir, `${sha256}.part`);
  }

  completePath(sha256: string): string {
    return join(this.downloadsDir, sha256);
  }

  /**
   * The verified artifact's path. Throws DistributionError (artifact_unsigned,
   * artifact_untrusted_key, artifact_bad_signature, artifact_hash_mismatch, artifact_unavailable)
   * or SupersededError when `signal` aborts.
   */
  async fetch(ref: ArtifactRef, signal: AbortSignal, onProblem?: (message: string) => void): Promise<string> {
    const trust = verifyArtifactSignature(ref, this.opts.trustedKeys);
    if (!trust.ok) throw new DistributionError(trust.code, trust.message);
    await mkdir(this.downloadsDir, { recursive: true });
    const done = this.completePath(ref.sha256);
    if (await stat(done).catch(() => undefined)) {
      // Downloaded and verified before; check again (the disk is not trusted more than the wire).
      if ((await this.hashOf(done)) === ref.sha256) return done;
      await rm(done, { force: true });
    }
    const part = this.partPath(ref.sha256);
    let attempt = 0;
    let clientErrors = 0;
    for (;;) {
      if (signal.aborted) throw new SupersededError();
      let have = (await stat(part).catch(() => undefined))?.size ?? 0;
      if (have > ref.size) {
        await truncate(part, 0);
        have = 0;
      }
      if (have === ref.size) break;
      const base = this.opts.source.controllerUrl();
      if (base === undefined) {
        this.opts.onProgress?.(ref, have, 'waiting for a controller connection');
        onProblem?.('waiting for a controller connection');
        await sleep(250, signal);
        continue;
      }
      try {
        await this.download(base, ref, part, have, signal);
        attempt = 0;
        clientErrors = 0;
      } catch (e) {
        if (signal.aborted) throw new SupersededError();
        const msg = e instanceof Error ? e.message : String(e);
        // 404: the controller does not hold it (yet; the platform may still be uploading) — retry.
        if (
          e instanceof HttpStatusError &&
          e.status >= 400 &&
          e.status < 500 &&
          e.status !== 416 &&
          e.status !== 404
        ) {
          if (++clientErrors >= (this.opts.maxClientErrors ?? 5))
            throw new DistributionError(
              'artifact_unavailable',
              `the controller cannot serve the artifact: ${msg}`,
            );
        }
        const got = (await stat(part).catch(() => undefined))?.size ?? 0;
        this.opts.onProgress?.(ref, got, msg);
        onProblem?.(`download interrupted at ${got} of ${ref.size} bytes, retrying: ${msg}`);
        const wait = backoffDelay(++attempt, this.retry.initialMs, this.retry.maxMs, 0.2);
        this.opts.logger.warn(
          { sha256: ref.sha256, bytes: got, of: ref.size, err: msg, retry_in_ms: wait },
          'artifact download interrupted; resuming',
        );
        await sleep(wait, signal);
      }
    }
    const sha = await this.hashOf(part);
    if (sha !== ref.sha256) {
      await rm(part, { force: true });
      throw new DistributionError(
        'artifact_hash_mismatch',
        `the downloaded ${ref.kind} ${ref.name} ${ref.version} has sha256 ${sha.slice(0, 12)}…, the signed one is ${ref.sha256.slice(0, 12)}…: refused`,
      );
    }
    await rename(part, done);
    return done;
  }

  private async hashOf(path: string): Promise<string> {
    const h = createHash('sha256');
    await pipeline(createReadStream(path), h);
    return h.digest('hex');
  }

  /** One GET from `have` on; appends to the part file. Throws on any failure. */
  private async download(
    base: string,
    ref: ArtifactRef,
    part: string,
    have: number,
    signal: AbortSignal,
  ): Promise<void> {
    const url = httpBase(base);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${AGENT_ARTIFACT_PATH}/${ref.sha256}`;
    const tls = this.opts.source.tls();
    const headers: Record<string, string> = {
      ...this.opts.source.headers(),
      ...(have > 0 ? { range: `bytes=${have}-` } : {}),
    };
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        {
          method: 'GET',
          headers,
          signal,
          timeout: 30_000,
          ...(url.protocol === 'https:' && tls
            ? { ca: tls.ca, ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}) }
            : {}),
        },
        resolve,
      );
      req.on('timeout', () => req.destroy(new Error('no answer from the controller within 30 s')));
      req.on('error', reject);
      req.end();
    });
    let start: number;
    if (res.statusCode === 206) {
      const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers['content-range'] ?? '');
      start = m ? Number(m[1]) : -1;
      if (start !== have) {
        res.resume();
        throw new Error(`the controller answered a range from ${start}, asked from ${have}`);
      }
    } else if (res.statusCode === 200) {
      start = 0; // no range support (or a fresh copy): start over
    } else {
      res.resume();
      if (res.statusCode === 416) await truncate(part, 0).catch(() => undefined);
      throw new HttpStatusError(res.statusCode ?? 0, `HTTP ${res.statusCode ?? '?'} from ${url.origin}`);
    }
    let written = start;
    const limit = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        written += chunk.length;
        if (written > ref.size) cb(new Error(`the controller sent more than the ${ref.size} signed bytes`));
        else cb(null, chunk);
      },
    });
    await pipeline(res, limit, createWriteStream(part, { flags: start === 0 ? 'w' : 'a' }));
    this.opts.onProgress?.(ref, written);
    if (written < ref.size) throw new Error(`the download ended at ${written} of ${ref.size} bytes`);
  }
}
