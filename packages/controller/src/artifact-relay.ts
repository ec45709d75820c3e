/**
 * Serving cached artifacts to agents: byte ranges (`Range: bytes=N-` and `bytes=N-M`, so an
 * interrupted download resumes) streamed from disk through one token bucket shared by every
 * download, so that the controller's agent traffic stays within `artifacts.bandwidth` however
 * many agents fetch at once. Bytes served and time spent waiting for the limit are metrics.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { OpsplaneError } from '@opsplane/models';
import type { CachedArtifact } from './artifact-cache.js';
import type { ControllerMetrics } from './metrics.js';

/**
 * A token bucket for bytes: `take(n)` resolves once `n` bytes may be sent. Waiters are served
 * in arrival order (one queue for all downloads, so none starves), and a take larger than the
 * burst simply waits longer (tokens may go negative: debt paid by waiting).
 */
export class TokenBucket {
  private readonly rate: number;
  private readonly burst: number;
  private tokens: number;
  private last = performance.now();
  private tail: Promise<void> = Promise.resolve();

  /** `rate` bytes per second; `burst` bytes may go at once after an idle period. */
  constructor(rate: number, burst = Math.max(64 * 1024, Math.floor(rate / 10))) {
    if (!(rate > 0)) throw new RangeError('rate must be positive');
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
  }

  /** Waits until `n` bytes may go; resolves with the milliseconds waited. */
  take(n: number): Promise<number> {
    const started = performance.now();
    const turn = this.tail.then(() => this.acquire(n));
    this.tail = turn;
    return turn.then(() => performance.now() - started);
  }

  private async acquire(n: number): Promise<void> {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.tokens -= n;
    if (this.tokens < 0) {
      const waitMs = (-this.tokens / this.rate) * 1000;
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

/** An inclusive byte range of an artifact. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * The range a `Range` header asks for: undefined = the whole artifact; 416 for one that cannot
 * be served. Only one range of the `bytes` unit (`N-`, `N-M` or the suffix form `-K`).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  const unsatisfiable = () =>
    new OpsplaneError('range_not_satisfiable', `cannot serve range '${header}' of a ${size}-byte artifact`, {
      status: 416,
    });
  if (!m || (m[1] === '' && m[2] === '')) throw unsatisfiable();
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (!Number.isSafeInteger(start) || start >= size || end < start) throw unsatisfiable();
  return { start, end };
}

export interface ArtifactRelayOptions {
  /** Bytes per second for all downloads together; 0 = unlimited. */
  bandwidthBytesPerS: number;
  metrics: ControllerMetrics;
}

export class ArtifactRelay {
  private readonly bucket: TokenBucket | undefined;
  private readonly metrics: ControllerMetrics;

  constructor(opts: ArtifactRelayOptions) {
    this.bucket = opts.bandwidthBytesPerS > 0 ? new TokenBucket(opts.bandwidthBytesPerS) : undefined;
    this.metrics = opts.metrics;
  }

  /** The bytes of `range` (inclusive), paced by the shared bandwidth limit and counted as served. */
  stream(artifact: CachedArtifact, range: ByteRange): Readable {
    const file = createReadStream(artifact.path, {
      start: range.start,
      end: range.end,
      highWaterMark: 64 * 1024,
    });
    const bucket = this.bucket;
    const metrics = this.metrics;
    if (!bucket) {
      // Unlimited: the file stream as is (no per-chunk hop through a generator).
      file.on('data', (chunk) => metrics.artifactBytesServed.inc(chunk.length));
      return file;
    }
    const limit = bucket;
    async function* paced(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of file as AsyncIterable<Buffer>) {
          const waitedMs = await limit.take(chunk.length);
          if (waitedMs > 1) metrics.artifactThrottledSeconds.inc(waitedMs / 1000);
          yield chunk;
          metrics.artifactBytesServed.inc(chunk.length);
        }
      } finally {
        file.destroy();
      }
    }
    return Readable.from(paced(), { objectMode: false });
  }
}
