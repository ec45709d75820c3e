/**
 * ControllerClient: the typed HTTP client for one controller's API (`/api/v1`, SYSTEM.md §2).
 *
 * It owns: URL normalisation (`http://` when no scheme), query strings exactly as the
 * controller expects (`page`, `pageSize` — never `page_size`), path-segment encoding, request
 * validation, response validation against the wire schemas, mapping failures to typed errors,
 * per-attempt timeouts, retries with backoff for idempotent GETs only, and a keep-alive
 * connection pool (an undici Pool for its origin, unless a shared dispatcher is supplied).
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { backoffDelay } from '@opsplane/kit';
import { Pool, type Dispatcher } from 'undici';
import type { z } from 'zod';
import {
  AGENT_FILTER_KEYS,
  ARTIFACT_BYTES_HEADER,
  ARTIFACT_COMPLETE_HEADER,
  ARTIFACT_REF_HEADER,
  ArtifactCacheListSchema,
  ArtifactCacheStatusSchema,
  ArtifactRefSchema,
  DesiredStatePushRequestSchema,
  DesiredStatePushResultSchema,
  Sha256Schema,
  type ArtifactCacheList,
  type ArtifactCacheStatus,
  type ArtifactRef,
  type DesiredStatePushRequest,
  type DesiredStatePushResult,
  AgentHealthReadSchema,
  AgentNotFoundError,
  AgentSchema,
  AgentsResponseSchema,
  BatchConfigRequestSchema,
  BatchOperationRequestSchema,
  BatchOperationResultSchema,
  ControllerStatusReadSchema,
  ConfigFileContentSchema,
  ConfigFileListSchema,
  DEFAULT_PAGE_SIZE,
  MAX_PAGE_SIZE,
  PackageNotFoundError,
  AgentPackagesReadSchema,
  OperationQueryRequestSchema,
  OperationQueryResultSchema,
  type AgentPackagesResponse,
  type OperationQueryRequest,
  type OperationQueryResult,
  RequestTimeoutError,
  ServiceHealthReadSchema,
  serviceMetricsReadSchema,
  SystemMetricsReadSchema,
  ValidationError,
  formatIssues,
  unknownAgentQueryParamMessage,
  type Agent,
  type AgentFilters,
  type AgentHealth,
  type AgentsResponse,
  type BatchAction,
  type BatchConfigRequestInput,
  type BatchOperationRequestInput,
  type BatchOperationResult,
  type ConfigFileContent,
  type ConfigFileList,
  type ControllerStatusResponse,
  type ServiceHealth,
  type ServiceMetrics,
  type SystemMetrics,
} from '@opsplane/models';
import { createLogger, type Logger } from '@opsplane/kit';
import {
  ArtifactOffsetMismatchError,
  ControllerConnectionError,
  ControllerHttpError,
  errorCode,
  parseWireError,
} from './errors.js';

export interface ControllerClientOptions {
  /** Per-attempt timeout (connect, headers and body). Default 30 000 (the guide's api_timeout). */
  timeoutMs?: number;
  /** Retries after the first attempt, for GETs only. Default 3 (the guide's retry_times). */
  retryTimes?: number;
  /** Base backoff; doubles per retry, with jitter. Default 1000 (the guide's retry_interval). */
  retryIntervalMs?: number;
  /** Upper bound of one backoff sleep. Default 30 000. */
  maxRetryIntervalMs?: number;
  /** Sent as `Authorization: Bearer <token>`. */
  apiToken?: string;
  /** Extra headers on every request (e.g. a controller asking a peer with `x-opsplane-forwarded`). */
  headers?: Record<string, string>;
  logger?: Logger;
  /**
   * A dispatcher shared with other clients (e.g. one undici Agent, which pools per origin).
   * The client does not close a dispatcher it was given; without one it creates and owns a
   * Pool for its origin.
   */
  dispatcher?: Dispatcher;
  /** Max sockets of the owned Pool. Default 16. */
  connections?: number;
  /** Responses larger than this are refused (protects the platform's memory). Default 64 MiB. */
  maxResponseBytes?: number;
  /**
   * TLS towards the controller (its owned Pool): the CA bundle to verify the controller's
   * certificate against (instead of the system's), and a client certificate to present. With
   * it, an address without a scheme means https.
   */
  tls?: ControllerTlsOptions;
}

/** PEM text of the trusted CA bundle and, optionally, the client's own certificate and key. */
export interface ControllerTlsOptions {
  ca?: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface ServiceMetricsOptions {
  package?: string;
  runningOnly?: boolean;
}

const DEFAULTS = {
  timeoutMs: 30_000,
  retryTimes: 3,
  retryIntervalMs: 1000,
  maxRetryIntervalMs: 30_000,
  connections: 16,
  maxResponseBytes: 64 * 1024 * 1024,
} as const;

/** Statuses after which an idempotent read may succeed on a second try. */
const RETRYABLE_STATUSES = new Set([502, 503, 504]);

const API_PREFIX = '/api/v1';

type HttpMethod = 'GET' | 'POST' | 'HEAD' | 'PUT';

/** What an artifact upload may send: bytes in memory or a stream of them. */
export type ArtifactBody = Buffer | Uint8Array | AsyncIterable<Uint8Array> | WebReadableStream<Uint8Array>;

/**
 * Uploads may take longer than one API call: their timeout grows with the bytes sent, as if the
 * link carried at least this many bytes per second.
 */
const UPLOAD_MIN_BYTES_PER_S = 1024 * 1024;

interface CallSpec<T> {
  method: HttpMethod;
  /** Path below /api/v1, already encoded. */
  path: string;
  query?: URLSearchParams;
  body?: unknown;
  schema: z.ZodType<T>;
  signal?: AbortSignal | undefined;
  /** Set for /agents/{id}… paths, so that 404 becomes AgentNotFoundError. */
  agentId?: string;
  pkg?: string;
  /** Extra request headers (e.g. x-opsplane-forwarded). */
  headers?: Record<string, string>;
  /** Per-call timeout instead of the client's (never longer, unless `extendTimeout`). */
  timeoutMs?: number | undefined;
  /** `timeoutMs` may exceed the client's timeout (uploads, whose duration grows with their size). */
  extendTimeout?: boolean;
  /** A raw (octet-stream) body instead of `body`'s JSON. */
  raw?: ArtifactBody;
  /**
   * Reads the answer instead of the JSON schema: called for 2xx and for `readStatuses`
   * (e.g. a HEAD's 404, which has no body to parse).
   */
  read?: (res: RawResponse) => T;
  readStatuses?: readonly number[];
}

/** Options of a batch write. */
export interface BatchCallOptions {
  /**
   * Ask this controller only about the agents it holds itself (no forwarding to its peers) —
   * what the platform does when it looks for agents after a controller of the area failed.
   */
  heldOnly?: boolean;
  /** Bounds this call below the client's timeout (what is left of a batch deadline). */
  timeoutMs?: number | undefined;
}

/** The header a controller reads as "a peer forwarded this: answer for the agents you hold". */
export const FORWARDED_HEADER = 'x-opsplane-forwarded';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

function batchCall(opts: BatchCallOptions): Pick<CallSpec<unknown>, 'headers' | 'timeoutMs'> {
  return {
    ...(opts.heldOnly ? { headers: { [FORWARDED_HEADER]: '1' } } : {}),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: Math.max(1, Math.floor(opts.timeoutMs)) } : {}),
  };
}

/**
 * Normalises a controller address to `scheme://host[:port][/prefix]` without trailing slash.
 * Adds `http://` when there is no scheme; accepts a base that already ends in /api/v1. An
 * address without a host (`:8081`, what a Go controller registers by default) means this
 * machine, as Go's net/http dials it.
 */
export function normalizeBaseUrl(raw: string, defaultScheme: 'http' | 'https' = 'http'): URL {
  let trimmed = raw.trim();
  if (trimmed === '') throw new ValidationError('controller address must not be empty');
  if (/^:\d{1,5}(\/|$)/.test(trimmed)) trimmed = `127.0.0.1${trimmed}`;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `${defaultScheme}://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ValidationError(`invalid controller address '${raw}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ValidationError(`controller address '${raw}' must use http or https`);
  }
  if (url.username || url.password) {
    throw new ValidationError('controller address must not contain credentials; use apiToken');
  }
  let path = url.pathname.replace(/\/+$/, '');
  if (path.endsWith(API_PREFIX)) path = path.slice(0, -API_PREFIX.length);
  url.pathname = path === '' ? '/' : path;
  url.search = '';
  url.hash = '';
  return url;
}

/** Encodes one path segment; refuses empty ones and neutralises `.`/`..`. */
export function encodeSegment(what: string, value: string): string {
  if (typeof value !== 'string' || value === '') throw new ValidationError(`${what} must not be empty`);
  const enc = encodeURIComponent(value);
  // encodeURIComponent leaves dots alone; a bare `.` or `..` segment would be resolved away.
  return /^\.+$/.test(enc) ? enc.replace(/\./g, '%2E') : enc;
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/** Sleeps `ms`, rejecting with the signal's reason as soon as it aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortReason(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function positiveInt(what: string, v: number, max?: number): number {
  if (!Number.isInteger(v) || v < 1 || (max !== undefined && v > max)) {
    throw new ValidationError(
      `${what} must be an integer from 1${max !== undefined ? ` to ${max}` : ''}, got ${String(v)}`,
    );
  }
  return v;
}

function nonNegativeNumber(what: string, v: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ValidationError(`${what} must be a non-negative number, got ${String(v)}`);
  }
  return v;
}

export class ControllerClient {
  /** Normalised base, e.g. `http://10.0.0.5:8081` (no trailing slash, no /api/v1). */
  readonly baseUrl: string;
  readonly area: string;
  private readonly origin: string;
  private readonly apiBase: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly retryTimes: number;
  private readonly retryIntervalMs: number;
  private readonly maxRetryIntervalMs: number;
  private readonly maxResponseBytes: number;
  private readonly headers: Record<string, string>;
  private readonly log: Logger;
  private timeoutMs: number;
  private closing: Promise<void> | undefined;

  constructor(baseUrl: string, area: string, options: ControllerClientOptions = {}) {
    const url = normalizeBaseUrl(baseUrl, options.tls ? 'https' : 'http');
    const prefix = url.pathname === '/' ? '' : url.pathname;
    this.origin = url.origin;
    this.baseUrl = `${url.origin}${prefix}`;
    this.apiBase = `${prefix}${API_PREFIX}`;
    this.area = area;
    this.timeoutMs = positiveInt('timeoutMs', options.timeoutMs ?? DEFAULTS.timeoutMs);
    this.retryTimes = nonNegativeNumber('retryTimes', options.retryTimes ?? DEFAULTS.retryTimes);
    this.retryIntervalMs = nonNegativeNumber(
      'retryIntervalMs',
      options.retryIntervalMs ?? DEFAULTS.retryIntervalMs,
    );
    this.maxRetryIntervalMs = nonNegativeNumber(
      'maxRetryIntervalMs',
      options.maxRetryIntervalMs ?? DEFAULTS.maxRetryIntervalMs,
    );
    this.maxResponseBytes = positiveInt(
      'maxResponseBytes',
      options.maxResponseBytes ?? DEFAULTS.maxResponseBytes,
    );
    this.headers = {
      accept: 'application/json',
      'user-agent': 'opsplane-platform',
      ...(options.headers ?? {}),
      ...(options.apiToken ? { authorization: `Bearer ${options.apiToken}` } : {}),
    };
    this.log = options.logger ?? createLogger('controller-client', { area, baseUrl: this.baseUrl });
    if (options.dispatcher) {
      this.dispatcher = options.dispatcher;
      this.ownsDispatcher = false;
    } else {
      const tls = options.tls;
      this.dispatcher = new Pool(this.origin, {
        connections: positiveInt('connections', options.connections ?? DEFAULTS.connections),
        ...(tls
          ? {
              connect: {
                ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
                ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
                ...(tls.key !== undefined ? { key: tls.key } : {}),
              },
            }
          : {}),
      });
      this.ownsDispatcher = true;
    }
  }

  /** Per-attempt timeout for later requests (the Go client's SetTimeout). */
  setTimeout(ms: number): void {
    this.timeoutMs = positiveInt('timeout', ms);
  }

  get timeout(): number {
    return this.timeoutMs;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * Stops accepting requests and, if the client owns its pool, closes it once in-flight
   * requests finish. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.ownsDispatcher ? this.dispatcher.close() : Promise.resolve();
    return this.closing;
  }

  // ---- reads (retried) ----

  /**
   * GET /agents?page=&pageSize=&<filters>. Only the ten documented filters are sent. A controller
   * lists every agent of its area (its peers' too); `heldOnly` asks for the agents it holds
   * itself — what an aggregator asking every controller of the area wants (no duplicates).
   */
  async listAgents(
    filters: AgentFilters = {},
    page = 1,
    pageSize: number = DEFAULT_PAGE_SIZE,
    signal?: AbortSignal,
    opts: { heldOnly?: boolean } = {},
  ): Promise<AgentsResponse> {
    const query = new URLSearchParams();
    query.set('page', String(positiveInt('page', page)));
    query.set('pageSize', String(positiveInt('pageSize', pageSize, MAX_PAGE_SIZE)));
    const known = new Set<string>(AGENT_FILTER_KEYS);
    for (const key of Object.keys(filters)) {
      // The type allows only the ten keys; this guards JS callers and `as` casts, because the
      // controller rejects unknown parameters (and the Go one answered a puzzling 502).
      if (!known.has(key))
        throw new ValidationError(unknownAgentQueryParamMessage(key), undefined, 'unknown_parameter');
    }
    for (const key of AGENT_FILTER_KEYS) {
      const v = filters[key];
      if (v !== undefined && v !== '') query.set(key, v);
    }
    return this.call({
      method: 'GET',
      path: '/agents',
      query,
      schema: AgentsResponseSchema,
      signal,
      ...(opts.heldOnly ? { headers: { [FORWARDED_HEADER]: '1' } } : {}),
    });
  }

  async getAgent(agentId: string, signal?: AbortSignal): Promise<Agent> {
    return this.call({
      method: 'GET',
      path: `/agents/${encodeSegment('agent id', agentId)}`,
      schema: AgentSchema,
      signal,
      agentId,
    });
  }

  // The per-agent reads below accept an Opsplane controller's answer and a Go controller's
  // (models' controller-answers.ts) and return Opsplane's typed view either way.

  async getAgentPackages(agentId: string, signal?: AbortSignal): Promise<AgentPackagesResponse> {
    const r = await this.call({
      method: 'GET',
      path: `/agents/${encodeSegment('agent id', agentId)}/packages`,
      schema: AgentPackagesReadSchema,
      signal,
      agentId,
    });
    return { ...r, agent_id: r.agent_id || agentId };
  }

  async getAgentHealth(agentId: string, signal?: AbortSignal): Promise<AgentHealth> {
    const h = await this.call({
      method: 'GET',
      path: `/agents/${encodeSegment('agent id', agentId)}/health`,
      schema: AgentHealthReadSchema,
      signal,
      agentId,
    });
    return { ...h, agent_id: h.agent_id || agentId };
  }

  async getServiceHealth(agentId: string, pkg: string, signal?: AbortSignal): Promise<ServiceHealth> {
    const h = await this.call({
      method: 'GET',
      path: `/agents/${encodeSegment('agent id', agentId)}/health/${encodeSegment('package', pkg)}`,
      schema: ServiceHealthReadSchema,
      signal,
      agentId,
      pkg,
    });
    return { ...h, name: h.name || pkg };
  }

  async getSystemMetrics(agentId: string, signal?: AbortSignal): Promise<SystemMetrics> {
    const m = await this.call({
      method: 'GET',
      path: `/agents/${encodeSegment('agent id', agentId)}/metrics/system`,
      schema: SystemMetricsReadSchema,
      signal,
      agentId,
    });
    return { ...m, agent_id: m.agent_id || agentId };
  }

  async getServiceMetrics(
    agentId: string,
    opts: ServiceMetricsOptions = {},
    signal?: AbortSignal,
  ): Promise<ServiceMetrics> {
    const query = new URLSearchParams();
    if (opts.package !== undefined && opts.package !== '') query.set('package', opts.package);
    if (opts.runningOnly !== undefined) query.set('running_only', String(opts.runningOnly));
    const m = await this.call({
      method: 'GET',
      path: `/agents/${encodeSegment('agent id', agentId)}/metrics/services`,
      query,
      schema: serviceMetricsReadSchema(opts.package || undefined),
      signal,
      agentId,
      ...(opts.package ? { pkg: opts.package } : {}),
    });
    const services = opts.runningOnly ? m.services.filter((s) => s.is_running !== false) : m.services;
    return { ...m, services, agent_id: m.agent_id || agentId };
  }

  /** The files in a package's config dir on the agent (read-only). */
  async listConfigFiles(agentId: string, pkg: string, signal?: AbortSignal): Promise<ConfigFileList> {
    return this.call({
      method: 'GET',
      path: `/agents/${encodeSegment('agent id', agentId)}/packages/${encodeSegment('package', pkg)}/configs`,
      schema: ConfigFileListSchema,
      signal,
      agentId,
      pkg,
    });
  }

  /** One file of a package's config dir as it is on the agent now (`exists: false` when absent). */
  async readConfigFile(
    agentId: string,
    pkg: string,
    fileName: string,
    signal?: AbortSignal,
  ): Promise<ConfigFileContent> {
    return this.call({
      method: 'GET',
      path:
        `/agents/${encodeSegment('agent id', agentId)}/packages/${encodeSegment('package', pkg)}` +
        `/configs/${encodeSegment('file name', fileName)}`,
      schema: ConfigFileContentSchema,
      signal,
      agentId,
      pkg,
    });
  }

  /** GET /status (a Go controller's answer is read too: `controller_id` → id, `function_area` → area). */
  async getStatus(signal?: AbortSignal): Promise<ControllerStatusResponse> {
    return this.call({ method: 'GET', path: '/status', schema: ControllerStatusReadSchema, signal });
  }

  // ---- batch writes (never retried: a lost answer does not mean the action did not run) ----

  async batchStart(req: BatchOperationRequestInput, signal?: AbortSignal): Promise<BatchOperationResult> {
    return this.batchAction('start', req, signal);
  }

  async batchStop(req: BatchOperationRequestInput, signal?: AbortSignal): Promise<BatchOperationResult> {
    return this.batchAction('stop', req, signal);
  }

  async batchRestart(req: BatchOperationRequestInput, signal?: AbortSignal): Promise<BatchOperationResult> {
    return this.batchAction('restart', req, signal);
  }

  /** POST /agents/batch/{action}. */
  async batchAction(
    action: BatchAction,
    req: BatchOperationRequestInput,
    signal?: AbortSignal,
    opts: BatchCallOptions = {},
  ): Promise<BatchOperationResult> {
    const body = validate(BatchOperationRequestSchema, req, 'batch request');
    return this.call({
      method: 'POST',
      path: `/agents/batch/${encodeSegment('action', action)}`,
      body,
      schema: BatchOperationResultSchema,
      signal,
      ...batchCall(opts),
    });
  }

  async batchUpdateConfigs(
    req: BatchConfigRequestInput,
    signal?: AbortSignal,
    opts: BatchCallOptions = {},
  ): Promise<BatchOperationResult> {
    const body = validate(BatchConfigRequestSchema, req, 'batch config request');
    return this.call({
      method: 'POST',
      path: '/agents/batch/configs',
      body,
      schema: BatchOperationResultSchema,
      signal,
      ...batchCall(opts),
    });
  }

  /** POST /agents/operations (Opsplane): what the agents' journals say about an operation id. */
  async queryOperations(
    req: OperationQueryRequest,
    signal?: AbortSignal,
    opts: BatchCallOptions = {},
  ): Promise<OperationQueryResult> {
    const body = validate(OperationQueryRequestSchema, req, 'operations query');
    return this.call({
      method: 'POST',
      path: '/agents/operations',
      body,
      schema: OperationQueryResultSchema,
      signal,
      ...batchCall(opts),
    });
  }

  // ---- distribution (Opsplane): the per-area artifact relay and desired state ----

  /**
   * HEAD /artifacts/{sha256}: what the controller's cache holds of an artifact — a partial
   * upload's bytes (resume from there) or `complete` — or undefined when it holds nothing.
   */
  async artifactStatus(sha256: string, signal?: AbortSignal): Promise<ArtifactCacheStatus | undefined> {
    const sha = validate(Sha256Schema, sha256, 'sha256');
    const path = `/artifacts/${sha}`;
    return this.call<ArtifactCacheStatus | undefined>({
      method: 'HEAD',
      path,
      schema: ArtifactCacheStatusSchema,
      signal,
      readStatuses: [404],
      read: (res) =>
        res.status === 404
          ? undefined
          : cacheStatusFromHeaders(sha, res, `${this.baseUrl}${this.apiBase}${path}`),
    });
  }

  /**
   * PUT /artifacts/{sha256}?offset=N: sends the artifact's bytes from `offset` to its end. The
   * controller appends them to what it holds, and once it has `ref.size` bytes verifies hash
   * and signature before it serves them (a mismatch is a 422 with the verification's code and
   * the partial copy is dropped). An `offset` other than the bytes it holds is an
   * ArtifactOffsetMismatchError carrying them, so the caller resumes there. Never retried here
   * (ensureArtifact does, from the offset the controller states).
   */
  async uploadArtifact(
    ref: ArtifactRef,
    offset: number,
    body: ArtifactBody,
    signal?: AbortSignal,
  ): Promise<ArtifactCacheStatus> {
    const r = validate(ArtifactRefSchema, ref, 'artifact ref');
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > r.size) {
      throw new ValidationError(`offset must be an integer from 0 to ${r.size}, got ${String(offset)}`);
    }
    const query = new URLSearchParams({ offset: String(offset) });
    return this.call({
      method: 'PUT',
      path: `/artifacts/${r.sha256}`,
      query,
      raw: body,
      headers: { [ARTIFACT_REF_HEADER]: encodeArtifactRefHeader(r) },
      schema: ArtifactCacheStatusSchema,
      signal,
      timeoutMs: this.timeoutMs + Math.ceil(((r.size - offset) / UPLOAD_MIN_BYTES_PER_S) * 1000),
      extendTimeout: true,
    });
  }

  /** GET /artifacts: every artifact the controller's cache holds (complete and partial). */
  async listArtifacts(signal?: AbortSignal): Promise<ArtifactCacheList> {
    return this.call({ method: 'GET', path: '/artifacts', schema: ArtifactCacheListSchema, signal });
  }

  /**
   * POST /agents/desired-state: hands each agent its desired state. One result per item: the
   * agent's status when it accepted, else why not (`agent_not_connected`, its own refusal, …).
   * Never retried (the agent keeps the highest revision, so a caller may resend safely).
   */
  async pushDesiredState(
    req: DesiredStatePushRequest | z.input<typeof DesiredStatePushRequestSchema>,
    signal?: AbortSignal,
    opts: BatchCallOptions = {},
  ): Promise<DesiredStatePushResult> {
    const body = validate(DesiredStatePushRequestSchema, req, 'desired-state request');
    return this.call({
      method: 'POST',
      path: '/agents/desired-state',
      body,
      schema: DesiredStatePushResultSchema,
      signal,
      ...batchCall(opts),
    });
  }

  // ---- machinery ----

  private url(path: string, query?: URLSearchParams): string {
    const qs = query?.toString();
    return `${this.apiBase}${path}${qs ? `?${qs}` : ''}`;
  }

  private async call<T>(spec: CallSpec<T>): Promise<T> {
    const idempotent = spec.method === 'GET' || spec.method === 'HEAD';
    const attempts = idempotent ? Math.floor(this.retryTimes) + 1 : 1;
    const fullUrl = `${this.origin}${this.url(spec.path, spec.query)}`;
    for (let attempt = 1; ; attempt++) {
      if (spec.signal?.aborted) throw abortReason(spec.signal);
      try {
        const raw = await this.attempt(spec, fullUrl);
        return this.interpret(spec, raw, fullUrl);
      } catch (err) {
        if (spec.signal?.aborted) throw abortReason(spec.signal);
        if (attempt >= attempts || this.closed || !isRetryable(err)) throw err;
        const delay = this.backoff(attempt, err);
        this.log.warn(
          { url: fullUrl, attempt, delayMs: delay, err: err instanceof Error ? err.message : String(err) },
          'controller request failed; retrying',
        );
        await abortableSleep(delay, spec.signal);
      }
    }
  }

  /** Equal-jitter exponential backoff, stretched to a Retry-After the controller sent. */
  private backoff(attempt: number, err: unknown): number {
    let delay = backoffDelay(attempt, this.retryIntervalMs, this.maxRetryIntervalMs);
    if (err instanceof ControllerHttpError && err.retryAfterMs !== undefined) {
      delay = Math.max(delay, Math.min(err.retryAfterMs, this.maxRetryIntervalMs));
    }
    return Math.round(delay);
  }

  /** One HTTP exchange under its own timeout; the caller's signal aborts it at once. */
  private async attempt<T>(spec: CallSpec<T>, fullUrl: string): Promise<RawResponse> {
    if (this.closed) {
      throw new ControllerConnectionError(
        this.area,
        fullUrl,
        undefined,
        `controller client for ${this.baseUrl} is closed`,
      );
    }
    const timeoutMs = spec.extendTimeout
      ? Math.max(this.timeoutMs, spec.timeoutMs ?? 0)
      : Math.min(this.timeoutMs, spec.timeoutMs ?? Number.POSITIVE_INFINITY);
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort(new RequestTimeoutError(`${spec.method} ${fullUrl}`, timeoutMs));
    }, timeoutMs);
    const onAbort = () => ac.abort(spec.signal?.reason);
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    const headers: Record<string, string> = { ...this.headers, ...spec.headers };
    let body: string | Buffer | Uint8Array | Readable | undefined;
    if (spec.raw !== undefined) {
      body = toRequestBody(spec.raw);
      headers['content-type'] = 'application/octet-stream';
    } else if (spec.body !== undefined) {
      body = JSON.stringify(spec.body);
      headers['content-type'] = 'application/json';
    }
    try {
      const res = await this.dispatcher.request({
        origin: this.origin,
        path: this.url(spec.path, spec.query),
        method: spec.method,
        headers,
        body: body ?? null,
        signal: ac.signal,
        // Our timer bounds the whole exchange; undici's own timers only as a backstop.
        headersTimeout: timeoutMs + 1000,
        bodyTimeout: timeoutMs + 1000,
      });
      const text = await this.readBody(res, spec, fullUrl);
      return { status: res.statusCode, headers: res.headers, text };
    } catch (err) {
      if (timedOut) throw new RequestTimeoutError(`${spec.method} ${fullUrl}`, timeoutMs);
      if (spec.signal?.aborted) throw abortReason(spec.signal);
      throw this.transportError(err, spec, fullUrl);
    } finally {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', onAbort);
    }
  }

  private async readBody<T>(
    res: Dispatcher.ResponseData,
    spec: CallSpec<T>,
    fullUrl: string,
  ): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > this.maxResponseBytes) {
        res.body.destroy();
        throw new ControllerHttpError({
          status: res.statusCode,
          body: '',
          url: fullUrl,
          method: spec.method,
          code: 'upstream_error',
          message: `response of ${spec.method} ${fullUrl} exceeds ${this.maxResponseBytes} bytes`,
        });
      }
      chunks.push(chunk);
    }
    // undici frees the connection a tick after the body ends; yielding once lets it do so, so a
    // caller's next request reuses this socket instead of opening a second one.
    await new Promise<void>((resolve) => setImmediate(resolve));
    return Buffer.concat(chunks).toString('utf8');
  }

  private transportError<T>(err: unknown, spec: CallSpec<T>, fullUrl: string): unknown {
    if (err instanceof ControllerHttpError) return err;
    const code = errorCode(err);
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
      return new RequestTimeoutError(`${spec.method} ${fullUrl}`, this.timeoutMs);
    }
    // Everything else below HTTP (refused, reset, DNS, socket closed, TLS) means the
    // controller could not be talked to.
    return new ControllerConnectionError(this.area, fullUrl, err);
  }

  private interpret<T>(spec: CallSpec<T>, raw: RawResponse, fullUrl: string): T {
    const { status, text } = raw;
    if (spec.read && ((status >= 200 && status < 300) || spec.readStatuses?.includes(status))) {
      return spec.read(raw);
    }
    if (status >= 200 && status < 300) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (cause) {
        throw new ControllerHttpError({
          status,
          body: text,
          url: fullUrl,
          method: spec.method,
          code: 'upstream_error',
          message: `controller answered ${spec.method} ${fullUrl} with a body that is not JSON`,
          cause,
        });
      }
      const parsed = spec.schema.safeParse(json);
      if (!parsed.success) {
        throw new ControllerHttpError({
          status,
          body: text,
          url: fullUrl,
          method: spec.method,
          code: 'upstream_error',
          message: `controller answered ${spec.method} ${fullUrl} with a malformed body: ${formatIssues(parsed.error.issues)}`,
          details: parsed.error.issues,
        });
      }
      return parsed.data;
    }
    if (status === 404 && spec.agentId !== undefined) {
      const wire = parseWireError(text);
      if (wire?.code === 'package_not_found' && spec.pkg !== undefined) {
        throw new PackageNotFoundError(spec.agentId, spec.pkg);
      }
      throw new AgentNotFoundError(
        spec.agentId,
        wire?.message ?? `agent '${spec.agentId}' not found in area '${this.area}'`,
      );
    }
    const retryAfterMs = parseRetryAfter(raw.headers['retry-after']);
    if (status === 409 && parseWireError(text)?.code === 'artifact_offset_mismatch') {
      const held = headerNumber(raw.headers[ARTIFACT_BYTES_HEADER]);
      if (held !== undefined)
        throw new ArtifactOffsetMismatchError(
          { status, body: text, url: fullUrl, method: spec.method },
          held,
        );
    }
    throw new ControllerHttpError({
      status,
      body: text,
      url: fullUrl,
      method: spec.method,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** A non-negative integer header (ARTIFACT_BYTES_HEADER); undefined when absent or malformed. */
function headerNumber(v: string | string[] | undefined): number | undefined {
  const s = headerValue(v)?.trim();
  return s !== undefined && /^\d{1,16}$/.test(s) ? Number(s) : undefined;
}

/** The cache status a controller states in its artifact headers. */
function cacheStatusFromHeaders(sha256: string, res: RawResponse, what: string): ArtifactCacheStatus {
  const bytes = headerNumber(res.headers[ARTIFACT_BYTES_HEADER]);
  const complete = headerValue(res.headers[ARTIFACT_COMPLETE_HEADER]);
  if (bytes === undefined || (complete !== 'true' && complete !== 'false')) {
    throw new ControllerHttpError({
      status: res.status,
      body: '',
      url: what,
      method: 'HEAD',
      code: 'upstream_error',
      message: `controller answered HEAD ${what} without valid ${ARTIFACT_BYTES_HEADER}/${ARTIFACT_COMPLETE_HEADER} headers`,
    });
  }
  return { sha256, bytes, complete: complete === 'true' };
}

/** An upload body as undici sends it: buffers as they are, streams as a Node Readable. */
function toRequestBody(b: ArtifactBody): Buffer | Uint8Array | Readable {
  if (Buffer.isBuffer(b) || b instanceof Uint8Array) return b;
  if (b instanceof Readable) return b;
  if (typeof (b as WebReadableStream<Uint8Array>).getReader === 'function') {
    return Readable.fromWeb(b as WebReadableStream<Uint8Array>);
  }
  return Readable.from(b as AsyncIterable<Uint8Array>, { objectMode: false });
}

/** base64url(JSON(ref)): how a ref travels in ARTIFACT_REF_HEADER. */
export function encodeArtifactRefHeader(ref: ArtifactRef): string {
  return Buffer.from(JSON.stringify(ref), 'utf8').toString('base64url');
}

function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined || !/^\d+$/.test(s.trim())) return undefined;
  return Number(s.trim()) * 1000;
}

function isRetryable(err: unknown): boolean {
  if (err instanceof ControllerConnectionError || err instanceof RequestTimeoutError) return true;
  return err instanceof ControllerHttpError && RETRYABLE_STATUSES.has(err.upstreamStatus);
}

function validate<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new ValidationError(`invalid ${what}: ${formatIssues(parsed.error.issues)}`, parsed.error.issues);
  }
  return parsed.data;
}
