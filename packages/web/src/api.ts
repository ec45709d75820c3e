/**
 * The UI's only way to the server: JSON over same-origin HTTP to /api/v1 with the session
 * cookie. Endpoints are named by their route key in the contract (@opsplane/api, types only),
 * `api.call('GET /devices/:id', { params: { id } })`, so a route the server does not have, or a
 * request or answer of the wrong shape, fails the type check. Failures become ApiError with the
 * server's `error.code` / `error.message`; a 401 (session gone) also tells the handler main.ts
 * installs, which goes to the login page.
 */
import type {
  ErrorBody,
  JsonRouteName,
  RequestArgs,
  RouteConsumes,
  RouteName,
  RouteResponse,
} from '@opsplane/api';

export const API_BASE = '/api/v1';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let unauthorized: (() => void) | undefined;

/** Called on every 401 except where the caller expects one (login, the first /auth/me). */
export function onUnauthorized(fn: () => void): void {
  unauthorized = fn;
}

/** `?a=1&b=x` from the defined, non-empty values; '' when there are none. */
export function queryString(params: object): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params) as [string, unknown][])
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

interface AnyRequest {
  params?: Record<string, string>;
  query?: object;
  body?: unknown;
}

function urlOf(route: string, r: AnyRequest = {}): { method: string; url: string } {
  const space = route.indexOf(' ');
  const path = route.slice(space + 1).replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_m, name: string) => {
    const v = r.params?.[name];
    if (v === undefined) throw new Error(`route ${route}: missing parameter '${name}'`);
    return encodeURIComponent(v);
  });
  return { method: route.slice(0, space), url: API_BASE + path + queryString(r.query ?? {}) };
}

/**
 * Method and URL of a route key with its request filled in: `:name` replaced by the URI-encoded
 * parameter (the rule of the contract's routePath), the query appended. For what `call` does
 * not fetch, such as the EventSource of a stream.
 */
function url<K extends RouteName>(route: K, ...[request]: RequestArgs<K>): { method: string; url: string } {
  return urlOf(route, request as AnyRequest | undefined);
}

export interface CallOptions {
  /** Do not treat a 401 as "session lost" (login, the session probe). */
  expect401?: boolean;
}

/** Calls an endpoint of the contract and answers its (successful) JSON body. */
async function call<K extends JsonRouteName>(
  route: K,
  ...args: [...RequestArgs<K>, CallOptions?]
): Promise<RouteResponse<K>> {
  const [request, opts = {}] = args as unknown as [AnyRequest | undefined, CallOptions?];
  const target = urlOf(route, request);
  const body = request?.body;
  return answer<K>(
    target,
    body !== undefined ? JSON.stringify(body) : null,
    body !== undefined ? 'application/json' : undefined,
    opts,
  );
}

/**
 * Sends a file as the body of an endpoint that takes one instead of JSON (an artifact), in one
 * of the content types it `consumes`; the rest as for `call`.
 */
async function upload<K extends JsonRouteName>(
  route: K,
  file: Blob,
  contentType: RouteConsumes<K>,
  ...args: RequestArgs<K>
): Promise<RouteResponse<K>> {
  const [request] = args as unknown as [AnyRequest | undefined];
  return answer<K>(urlOf(route, request), file, contentType as string, {});
}

async function answer<K extends JsonRouteName>(
  target: { method: string; url: string },
  body: string | Blob | null,
  contentType: string | undefined,
  opts: CallOptions,
): Promise<RouteResponse<K>> {
  let res: Response;
  try {
    res = await fetch(target.url, {
      method: target.method,
      credentials: 'same-origin',
      headers: {
        accept: 'application/json',
        ...(contentType ? { 'content-type': contentType } : {}),
      },
      body,
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'the server cannot be reached; check your connection');
  }
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const err = (data as Partial<ErrorBody> | undefined)?.error;
    if (res.status === 401 && !opts.expect401) unauthorized?.();
    throw new ApiError(
      res.status,
      err?.code ?? `http_${res.status}`,
      err?.message ?? `the server answered ${res.status} ${res.statusText}`.trim(),
    );
  }
  // A 204 has no body; the contract states it as null.
  return (data ?? null) as RouteResponse<K>;
}

export const api = { call, upload, url };

/** What to show for any failure: the server's message for API errors. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
