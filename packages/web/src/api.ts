/**
 * The UI's only way to the server: JSON over same-origin HTTP to /api/v1 with the session
 * cookie. Failures become ApiError with the server's `error.code` / `error.message`; a 401
 * (session gone) also tells the handler main.ts installs, which goes to the login page.
 */
import type { ErrorBody } from './types.js';

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

export type QueryValue = string | number | boolean | undefined | null;

/** `?a=1&b=x` from the defined, non-empty values; '' when there are none. */
export function queryString(params: Record<string, QueryValue>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export interface RequestOptions {
  /** Do not treat a 401 as "session lost" (login, the session probe). */
  expect401?: boolean;
}

export async function request<T>(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body?: unknown,
  opts: RequestOptions = {},
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(API_BASE + path, {
      method,
      credentials: 'same-origin',
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : null,
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
    const err = (data as ErrorBody | undefined)?.error;
    if (res.status === 401 && !opts.expect401) unauthorized?.();
    throw new ApiError(
      res.status,
      err?.code ?? `http_${res.status}`,
      err?.message ?? `the server answered ${res.status} ${res.statusText}`.trim(),
    );
  }
  return data as T;
}

export const api = {
  get: <T>(path: string, query: Record<string, QueryValue> = {}, opts?: RequestOptions) =>
    request<T>('GET', path + queryString(query), undefined, opts),
  post: <T>(path: string, body?: unknown, opts?: RequestOptions) => request<T>('POST', path, body, opts),
};

/** What to show for any failure: the server's message for API errors. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
