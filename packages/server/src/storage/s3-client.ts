/**
 * A small S3 client of our own (the few calls artifact content needs: PUT, ranged GET, DELETE,
 * HEAD object and HEAD bucket) over undici, signed with AWS Signature V4 in the Authorization
 * header. Path-style (`endpoint/bucket/key`, what MinIO and most S3-compatible stores expect) or
 * virtual-hosted (`bucket.endpoint/key`) addressing. Every failure becomes an S3StoreError with a
 * stable code; S3's XML never reaches a client.
 */
import { createHash, createHmac } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { OpsplaneError } from '@opsplane/models';

export interface S3ClientOptions {
  endpoint: string;
  region: string;
  bucket: string;
  pathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  /** Connect and response-headers timeout of one call. */
  timeoutMs?: number;
}

/** sha256 of the empty payload (GET, HEAD, DELETE). */
const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

/**
 * The store could not be reached or failed (connection refused, timeout, 5xx):
 * `artifact_store_unavailable`, 503. The store answered but refused (bad credentials, no such
 * bucket): `artifact_store_rejected`, also 503 — the server's configuration, not the client's
 * request, is at fault. An object that should be there and is not: `artifact_content_missing`.
 */
export class S3StoreError extends OpsplaneError {
  constructor(
    code: 'artifact_store_unavailable' | 'artifact_store_rejected' | 'artifact_content_missing',
    message: string,
    readonly s3Status?: number,
  ) {
    // No `cause`: a socket error under it (ECONNREFUSED…) would read as "the database is down"
    // to isDatabaseUnavailable. The message names the failure instead.
    super(code, message, { status: 503 });
  }
}

export interface S3Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
}

/** RFC 3986 encoding as SigV4 wants it (each path segment; '/' kept). */
function encodeKey(key: string): string {
  return key
    .split('/')
    .map((s) =>
      encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');
}

/** What went wrong under a failed call, in words (undici nests the socket error). */
export function failure(e: unknown): string {
  const err = e as { message?: string; code?: string; cause?: { message?: string; code?: string } };
  const inner = err.cause?.code ?? err.code;
  return [err.message, err.cause?.message, inner].filter(Boolean).join(': ');
}

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

export class S3Client {
  private readonly base: URL;
  private readonly dispatcher: Agent;

  constructor(private readonly o: S3ClientOptions) {
    this.base = new URL(o.endpoint);
    const timeout = o.timeoutMs ?? 10_000;
    this.dispatcher = new Agent({ connect: { timeout }, headersTimeout: timeout, bodyTimeout: timeout * 3 });
  }

  /** Where the store is, for log lines (never credentials). */
  describe(): string {
    return `${this.base.origin} bucket '${this.o.bucket}' (${this.o.pathStyle ? 'path-style' : 'virtual-hosted'})`;
  }

  /** Host and canonical path of `key` (no key: the bucket itself). */
  private target(key: string | undefined): { host: string; path: string } {
    const prefix = this.base.pathname.replace(/\/+$/, '');
    if (this.o.pathStyle)
      return {
        host: this.base.host,
        path: `${prefix}/${encodeKey(this.o.bucket)}${key !== undefined ? `/${encodeKey(key)}` : ''}`,
      };
    return {
      host: `${this.o.bucket}.${this.base.host}`,
      path: `${prefix}/${key !== undefined ? encodeKey(key) : ''}`,
    };
  }

  /** The headers (Authorization included) that call() would send for `key` at `now`. */
  signedHeaders(
    method: string,
    key: string | undefined,
    payloadSha256: string,
    extra: Record<string, string>,
    now: Date,
  ): Record<string, string> {
    const { host, path } = this.target(key);
    return this.sign(method, host, path, payloadSha256, extra, now);
  }

  /** Signature V4 headers for one call (header auth, payload hash given). */
  private sign(
    method: string,
    host: string,
    path: string,
    payloadSha256: string,
    extra: Record<string, string>,
    now = new Date(),
  ): Record<string, string> {
    const amzDate = now
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d{3}/, '');
    const day = amzDate.slice(0, 8);
    const headers: Record<string, string> = {
      ...extra,
      host,
      'x-amz-content-sha256': payloadSha256,
      'x-amz-date': amzDate,
    };
    const names = Object.keys(headers)
      .map((h) => h.toLowerCase())
      .sort();
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const canonicalHeaders = names.map((h) => `${h}:${String(lower[h]).trim()}\n`).join('');
    const signedHeaders = names.join(';');
    const canonical = [method, path || '/', '', canonicalHeaders, signedHeaders, payloadSha256].join('\n');
    const scope = `${day}/${this.o.region}/s3/aws4_request`;
    const toSign = [
      'AWS4-HMAC-SHA256',
      amzDate,
      scope,
      createHash('sha256').update(canonical).digest('hex'),
    ].join('\n');
    const key = hmac(
      hmac(hmac(hmac(`AWS4${this.o.secretAccessKey}`, day), this.o.region), 's3'),
      'aws4_request',
    );
    const signature = createHmac('sha256', key).update(toSign).digest('hex');
    const { host: _h, ...send } = headers;
    return {
      ...send,
      authorization: `AWS4-HMAC-SHA256 Credential=${this.o.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    };
  }

  /**
   * One signed call. Connection failures and 5xx throw `artifact_store_unavailable`; other
   * statuses are returned for the caller to judge (after `ok` lists what it accepts).
   */
  async call(
    method: 'GET' | 'PUT' | 'DELETE' | 'HEAD',
    key: string | undefined,
    opts: { headers?: Record<string, string>; body?: Readable; payloadSha256?: string; ok: number[] },
  ): Promise<S3Response> {
    const { host, path } = this.target(key);
    const headers = this.sign(method, host, path, opts.payloadSha256 ?? EMPTY_SHA256, opts.headers ?? {});
    const url = `${this.base.protocol}//${host}${path || '/'}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method,
        headers,
        dispatcher: this.dispatcher,
        ...(opts.body ? { body: opts.body } : {}),
      });
    } catch (e) {
      throw new S3StoreError(
        'artifact_store_unavailable',
        `the artifact store (${this.describe()}) cannot be reached: ${failure(e)}`,
      );
    }
    if (opts.ok.includes(res.statusCode))
      return { status: res.statusCode, headers: res.headers, body: res.body };
    const text = method === 'HEAD' ? '' : await res.body.text().catch(() => '');
    if (method === 'HEAD') await res.body.dump().catch(() => undefined);
    // HEAD answers carry no XML: name the usual meaning of the status instead.
    const s3Code =
      /<Code>([^<]{1,64})<\/Code>/.exec(text)?.[1] ??
      ({ 400: 'BadRequest', 403: 'AccessDenied', 404: key === undefined ? 'NoSuchBucket' : 'NotFound' }[
        res.statusCode
      ] as string | undefined) ??
      'Error';
    const what = `${method} ${key ?? '(bucket)'}`;
    if (res.statusCode >= 500)
      throw new S3StoreError(
        'artifact_store_unavailable',
        `the artifact store (${this.describe()}) failed ${what}: ${s3Code} (HTTP ${res.statusCode})`,
        res.statusCode,
      );
    throw new S3StoreError(
      'artifact_store_rejected',
      `the artifact store (${this.describe()}) refused ${what}: ${s3Code} (HTTP ${res.statusCode}) — ` +
        'check server.artifacts.store (credentials, bucket, region)',
      res.statusCode,
    );
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
