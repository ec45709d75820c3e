/**
 * ensureArtifact: makes one controller hold a complete, verified copy of an artifact — what the
 * server does once per controller before handing agents a desired state that names it. It asks
 * what the controller holds (HEAD), sends only the missing tail (resuming a partial upload,
 * e.g. after a controller restart), and retries a bounded number of times from whatever offset
 * the controller then states. A verification failure (422: the bytes or the signature do not
 * match the ref) is final: sending the same bytes again cannot fix it.
 */
import { backoffDelay } from '@opsplane/kit';
import {
  OpsplaneError,
  RequestTimeoutError,
  type ArtifactCacheStatus,
  type ArtifactRef,
} from '@opsplane/models';
import type { ArtifactBody, ControllerClient } from './controller-client.js';
import { abortableSleep } from './controller-client.js';
import { ArtifactOffsetMismatchError, ControllerConnectionError, ControllerHttpError } from './errors.js';

export interface EnsureArtifactOptions {
  /** Uploads tried before giving up (each resumes where the controller is). Default 5. */
  attempts?: number;
  /** Base backoff between failed attempts; doubles, with jitter. Default 500 ms. */
  retryIntervalMs?: number;
  signal?: AbortSignal;
}

/** Failures after which a new attempt may succeed (the controller or the link were the problem). */
function transient(err: unknown): boolean {
  if (err instanceof ArtifactOffsetMismatchError) return true;
  if (err instanceof ControllerConnectionError || err instanceof RequestTimeoutError) return true;
  if (err instanceof ControllerHttpError) {
    // 409 artifact_busy: another upload of the same artifact is in progress there.
    return err.upstreamStatus >= 500 || err.upstreamStatus === 429 || err.wireCode === 'artifact_busy';
  }
  return false;
}

/**
 * Returns the controller's final status (complete). `open(offset)` gives the artifact's bytes
 * from `offset` to its end; it is called once per upload attempt.
 */
export async function ensureArtifact(
  client: ControllerClient,
  ref: ArtifactRef,
  open: (offset: number) => ArtifactBody | Promise<ArtifactBody>,
  opts: EnsureArtifactOptions = {},
): Promise<ArtifactCacheStatus> {
  const attempts = Math.max(1, opts.attempts ?? 5);
  const interval = opts.retryIntervalMs ?? 500;
  let status = await client.artifactStatus(ref.sha256, opts.signal);
  let lastError: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (status?.complete) return status;
    const offset = status && status.bytes <= ref.size ? status.bytes : 0;
    try {
      status = await client.uploadArtifact(ref, offset, await open(offset), opts.signal);
      if (status.complete) return status;
      lastError = undefined;
    } catch (err) {
      if (opts.signal?.aborted || !transient(err)) throw err;
      lastError = err;
      if (err instanceof ArtifactOffsetMismatchError) {
        // The controller said where it is: resume there at once.
        status = { sha256: ref.sha256, bytes: err.bytes, complete: false };
        continue;
      }
      await abortableSleep(backoffDelay(attempt, interval, 30_000), opts.signal);
      // What it holds now (the failed upload may have written part of its bytes).
      status = await client.artifactStatus(ref.sha256, opts.signal).catch(() => status);
    }
  }
  if (status?.complete) return status;
  throw new OpsplaneError(
    'artifact_upload_failed',
    `controller ${client.baseUrl} did not complete artifact ${ref.name} ${ref.version} ` +
      `(sha256 ${ref.sha256.slice(0, 12)}…) after ${attempts} attempts` +
      (lastError instanceof Error ? `: ${lastError.message}` : ''),
    { status: 502, ...(lastError !== undefined ? { cause: lastError } : {}) },
  );
}
