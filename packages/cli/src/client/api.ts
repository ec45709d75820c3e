/**
 * The CLI's client of the platform server API: finds the server and the credentials (flags,
 * then OPSPLANE_SERVER / OPSPLANE_TOKEN, then what `opsplane login` stored), calls endpoints by
 * their route key in the contract (@opsplane/api) with JSON, CSV or a file as the body, opens
 * event streams, and turns failures into messages an operator can act on: the server cannot be
 * reached, the login expired ("run opsplane login"), or the server's own error message.
 */
import {
  API_PREFIX,
  routePath,
  type ErrorBody,
  type JsonRouteName,
  type RequestArgs,
  type RouteConsumes,
  type RouteName,
  type RouteResponse,
} from '@opsplane/api';
import { CliError } from '../command.js';
import { readCredentials, type StoredCredentials } from './credentials.js';
import { cliFetch, useCaFile } from './tls.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export function normalizeServer(url: string): string {
  const t = url
    .trim()
    .replace(/\/+$/, '')
    .replace(/\/api\/v1$/, '');
  return /^[a-z]+:\/\//i.test(t) ? t : `http://${t}`;
}

export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The ApiError for an error answer: the server's message, or what to do about a lost login. */
function apiErrorFor(server: string, status: number, statusText: string, text: string): ApiError {
  let parsed: Partial<ErrorBody> | undefined;
  try {
    parsed = text ? (JSON.parse(text) as Partial<ErrorBody>) : undefined;
  } catch {
    parsed = undefined;
  }
  const e = parsed?.error;
  if (status === 401)
    return new ApiError(
      401,
      'unauthorized',
      `not logged in to ${server}, or the login expired${e?.message ? ` (${e.message})` : ''}: run 'opsplane login'`,
    );
  return new ApiError(
    status,
    e?.code ?? 'error',
    `${e?.message ?? (text.slice(0, 300) || statusText)} (HTTP ${status})`,
  );
}

/** How a call is made, besides what the contract says it carries. */
export interface CallOptions<K extends RouteName> {
  /** Send the request's string body as-is in this type, one the endpoint takes besides JSON (text/csv). */
  contentType?: RouteConsumes<K>;
  /**
   * A file as the body, for an endpoint that takes one instead of JSON (an agent bundle); sent
   * as-is in `contentType`.
   */
  upload?: [RouteConsumes<K>] extends [never] ? never : Uint8Array;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Whole-request timeout: 120 s by default for JSON calls, none for `open` (streams). */
  timeoutMs?: number;
}

/** The request (when the route needs one) and the options of a call of route K. */
export type CallArgs<K extends RouteName> = [...RequestArgs<K>, CallOptions<K>?];

/** A whole answer: status (e.g. 201 or 202), body and headers. */
export interface Answer<K extends RouteName> {
  status: number;
  body: RouteResponse<K>;
  headers: Headers;
}

interface AnyRequest {
  params?: Record<string, string>;
  query?: Record<string, unknown>;
  body?: unknown;
}

const JSON_TIMEOUT_MS = 120_000;

/**
 * The platform server's API, addressed by the contract's route keys:
 * `api.call('GET /devices/:id', { params: { id } })`. A route the server does not have, or a
 * request or answer of the wrong shape, fails the type check.
 */
export class ApiClient {
  constructor(
    readonly server: string,
    private readonly auth: { token?: string | undefined; cookie?: string | undefined },
  ) {}

  /** The headers that authenticate a request. */
  private authHeaders(): Record<string, string> {
    if (this.auth.token) return { authorization: `Bearer ${this.auth.token}` };
    // With the session cookie the server wants its own Origin on changes (its CSRF check).
    if (this.auth.cookie) return { cookie: this.auth.cookie, origin: new URL(this.server).origin };
    return {};
  }

  /** Calls a JSON endpoint and answers its (successful) body; ApiError for 4xx/5xx. */
  async call<K extends JsonRouteName>(route: K, ...args: CallArgs<K>): Promise<RouteResponse<K>> {
    return (await this.send(route, ...args)).body;
  }

  /** Like `call`, with the status and headers of the answer. */
  async send<K extends JsonRouteName>(route: K, ...args: CallArgs<K>): Promise<Answer<K>> {
    const res = await this.fetch(route, args, JSON_TIMEOUT_MS);
    const text = await res.text();
    let parsed: unknown;
    try {
      // A 204 has no body; the contract states it as null.
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
    return { status: res.status, body: parsed as RouteResponse<K>, headers: res.headers };
  }

  /**
   * Makes the request and hands back the response unread (an event stream): any route,
   * no timeout unless given. Errors as for `call`.
   */
  async open<K extends RouteName>(route: K, ...args: CallArgs<K>): Promise<Response> {
    return this.fetch(route, args, undefined);
  }

  private async fetch(route: RouteName, args: readonly unknown[], timeoutMs: number | undefined) {
    const [request = {}, opts = {}] = args as [AnyRequest?, CallOptions<RouteName>?];
    const { method, path } = routePath(route, request.params);
    const url = new URL(`${this.server}${API_PREFIX}${path}`);
    for (const [k, v] of Object.entries(request.query ?? {}))
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...this.authHeaders() };
    let body: string | Uint8Array | undefined;
    const contentType = opts.contentType as string | undefined;
    if (opts.upload !== undefined) {
      headers['content-type'] = contentType ?? 'application/octet-stream';
      body = opts.upload;
    } else if (request.body !== undefined) {
      headers['content-type'] = contentType ?? 'application/json';
      body = contentType && typeof request.body === 'string' ? request.body : JSON.stringify(request.body);
    }
    Object.assign(headers, opts.headers);
    const timeout = opts.timeoutMs ?? timeoutMs;
    const signals = [opts.signal, timeout ? AbortSignal.timeout(timeout) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    let res: Response;
    try {
      res = await cliFetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        ...(signals.length ? { signal: signals.length === 1 ? signals[0] : AbortSignal.any(signals) } : {}),
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why =
        (e as Error).name === 'TimeoutError'
          ? 'no answer in time'
          : (cause?.code ?? cause?.message ?? (e as Error).message);
      throw new CliError(
        `cannot reach the Opsplane server at ${this.server} (${why}). Is it running? Set the address with --server or OPSPLANE_SERVER.`,
      );
    }
    if (res.status >= 400) throw apiErrorFor(this.server, res.status, res.statusText, await res.text());
    return res;
  }
}

/**
 * The client for a command: `--server` > OPSPLANE_SERVER > stored server > 127.0.0.1:8080, and
 * OPSPLANE_TOKEN > the stored token (or session) — the stored one only for the server it was
 * issued by.
 */
export async function connect(
  serverFlag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ApiClient> {
  const stored: StoredCredentials | undefined = await readCredentials(env);
  const server = normalizeServer(serverFlag ?? env.OPSPLANE_SERVER ?? stored?.server ?? DEFAULT_SERVER);
  useCaFile(
    env.OPSPLANE_CA_FILE ??
      (stored && normalizeServer(stored.server) === server ? stored.ca_file : undefined),
  );
  if (env.OPSPLANE_TOKEN) return new ApiClient(server, { token: env.OPSPLANE_TOKEN });
  if (stored && normalizeServer(stored.server) === server) {
    if (stored.token) return new ApiClient(server, { token: stored.token });
    if (stored.session) return new ApiClient(server, { cookie: `opsplane_session=${stored.session}` });
  }
  throw new CliError(
    stored
      ? `no credentials for ${server} (logged in to ${stored.server}): run 'opsplane login --server ${server}' or set OPSPLANE_TOKEN`
      : `not logged in: run 'opsplane login${serverFlag || env.OPSPLANE_SERVER ? ` --server ${server}` : ''}' or set OPSPLANE_TOKEN`,
  );
}

/** `--agents A,B --agents C` → ['A','B','C']. */
export function listFlag(v: string[] | string | undefined): string[] {
  const arr = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return arr
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}
