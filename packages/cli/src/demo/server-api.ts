/**
 * Just enough of a platform-server client for the demo: JSON requests under /api/v1 with the
 * session cookie from POST /auth/login.
 */

export class ServerApiError extends Error {
  constructor(
    readonly status: number,
    readonly method: string,
    readonly path: string,
    readonly body: unknown,
  ) {
    const e = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
    super(`${method} ${path} → ${status}${e?.message ? `: ${e.message}` : ''}`);
    this.name = 'ServerApiError';
  }
}

export class ServerApi {
  private cookie: string | undefined;
  private readonly fetch: typeof fetch;

  /** `baseUrl` like http://127.0.0.1:8080 (no /api/v1); `fetcher` trusts the demo CA for https. */
  constructor(
    readonly baseUrl: string,
    fetcher?: typeof fetch,
  ) {
    this.fetch = fetcher ?? fetch;
  }

  async request<T = unknown>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
    timeoutMs = 30_000,
  ): Promise<{ status: number; body: T }> {
    const res = await this.fetch(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers: {
        accept: 'application/json',
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        // The server's own Origin with the cookie, as its CSRF check wants for changes.
        ...(this.cookie ? { cookie: this.cookie, origin: new URL(this.baseUrl).origin } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const setCookie = res.headers.getSetCookie?.() ?? [];
    for (const c of setCookie) {
      const pair = c.split(';')[0];
      if (pair?.startsWith('opsplane_session=')) this.cookie = pair;
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T };
  }

  /** Like request() but throws ServerApiError unless the status is 2xx. */
  async call<T = unknown>(
    method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
    timeoutMs?: number,
  ): Promise<T> {
    const r = await this.request<T>(method, path, body, timeoutMs);
    if (r.status < 200 || r.status > 299) throw new ServerApiError(r.status, method, path, r.body);
    return r.body;
  }

  async login(username: string, password: string): Promise<void> {
    await this.call('POST', '/auth/login', { username, password });
    if (!this.cookie) throw new Error('login answered without a session cookie');
  }

  async healthy(): Promise<boolean> {
    try {
      const res = await this.fetch(`${this.baseUrl}/healthz`, { signal: AbortSignal.timeout(2000) });
      return res.ok;
    } catch {
      return false;
    }
  }
}
