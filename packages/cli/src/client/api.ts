/**
 * The CLI's client of the platform server API: finds the server and the credentials (flags,
 * then OPSPLANE_SERVER / OPSPLANE_TOKEN, then what `opsplane login` stored), sends JSON (or
 * CSV) requests and turns failures into messages an operator can act on: the server cannot be
 * reached, the login expired ("run opsplane login"), or the server's own error message.
 */
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

export interface RequestOptions {
  body?: unknown;
  /** Sent as-is with this content type (e.g. text/csv); otherwise the body is JSON. */
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
}

export class ApiClient {
  constructor(
    readonly server: string,
    private readonly auth: { token?: string | undefined; cookie?: string | undefined },
  ) {}

  /** The headers that authenticate a request (also for streams and uploads, see sse.ts). */
  authHeaders(): Record<string, string> {
    if (this.auth.token) return { authorization: `Bearer ${this.auth.token}` };
    if (this.auth.cookie) return { cookie: this.auth.cookie };
    return {};
  }

  async request<T>(
    method: string,
    path: string,
    opts: RequestOptions = {},
  ): Promise<{ status: number; body: T; headers: Headers }> {
    const url = new URL(`${this.server}/api/v1${path}`);
    for (const [k, v] of Object.entries(opts.query ?? {}))
      if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json', ...this.authHeaders() };
    let body: string | undefined;
    if (opts.body !== undefined) {
      headers['content-type'] = opts.contentType ?? 'application/json';
      body = opts.contentType && typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    }
    let res: Response;
    try {
      res = await cliFetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why =
        (e as Error).name === 'TimeoutError'
          ? 'no answer in time'
          : (cause?.code ?? cause?.message ?? (e as Error).message);
      throw new CliError(
        `cannot reach the Opsplane server at ${this.server} (${why}). Is it running? Set the address with --server or OPSPLANE_SERVER.`,
      );
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (res.status === 401) {
      const m = (parsed as { error?: { message?: string } } | undefined)?.error?.message;
      throw new ApiError(
        401,
        'unauthorized',
        `not logged in to ${this.server}, or the login expired${m ? ` (${m})` : ''}: run 'opsplane login'`,
      );
    }
    if (res.status >= 400) {
      const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new ApiError(
        res.status,
        e?.code ?? 'error',
        `${e?.message ?? text.slice(0, 300) ?? res.statusText} (HTTP ${res.status})`,
      );
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  async get<T>(path: string, query?: RequestOptions['query']): Promise<T> {
    return (await this.request<T>('GET', path, query ? { query } : {})).body;
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
