/**
 * Log serializers that keep secrets out of log lines, for every process (rootLogger uses them;
 * the server and the controller put them on whatever logger they are given):
 *
 * - `err`: pino's error serializer without the bound values of a failed SQL statement (drizzle's
 *   `Failed query: … params: …` carries token hashes, names, encrypted secrets) — neither in the
 *   message, the stack nor as properties — and without values of secret-looking properties or
 *   PostgreSQL's `detail` (it quotes the offending row).
 * - `req`: an HTTP request as method, path (no query string: it may carry anything), host and
 *   client address; never headers or body.
 */
import { pino } from 'pino';

const SECRET_KEY = /pass(word|phrase)?|private_?key|secret|token|credential|authorization|cookie/i;
/** Properties of database errors that quote values: drizzle's params, pg's detail/where. */
const VALUE_KEYS = new Set(['params', 'parameters', 'detail', 'where', 'internalQuery']);
const REDACTED = '[redacted]';

interface ErrorLike {
  message?: unknown;
  cause?: unknown;
  params?: unknown;
  query?: unknown;
}

/** The `\nparams: …` texts of drizzle query errors along the cause chain. */
function paramTexts(err: unknown): string[] {
  const out: string[] = [];
  let e: unknown = err;
  for (let i = 0; i < 10 && e && typeof e === 'object'; i++) {
    const x = e as ErrorLike;
    if (Array.isArray(x.params) && typeof x.query === 'string') out.push(`\nparams: ${String(x.params)}`);
    e = x.cause;
  }
  return out;
}

function scrub(text: string, remove: readonly string[]): string {
  let out = text;
  for (const r of remove) if (r.length > '\nparams: '.length) out = out.split(r).join('\nparams: [redacted]');
  return out;
}

function redactProps(v: unknown, depth: number): unknown {
  if (depth > 6 || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => redactProps(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (VALUE_KEYS.has(k) || (SECRET_KEY.test(k) && typeof x !== 'boolean')) out[k] = REDACTED;
    else out[k] = redactProps(x, depth + 1);
  }
  return out;
}

/** pino's `err` serializer, minus SQL parameters and secret-looking values. */
export function safeErrSerializer(err: unknown): unknown {
  if (!(err instanceof Error)) return redactProps(err, 0);
  const remove = paramTexts(err);
  const s = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  const out = redactProps(s, 0) as Record<string, unknown>;
  if (typeof s.message === 'string') out.message = scrub(s.message, remove);
  if (typeof s.stack === 'string') out.stack = scrub(s.stack, remove);
  // type, message and stack are pino's own keys: never redacted by name.
  out.type = s.type;
  return out;
}

interface RequestLike {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  headers?: Record<string, unknown>;
  socket?: { remotePort?: number };
}

/** The path of a request URL without its query string. */
export function pathOnly(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?[redacted]`;
}

/** An HTTP request for the log: method, path without the query, host, client address. */
export function safeReqSerializer(req: unknown): unknown {
  if (!req || typeof req !== 'object') return req;
  const r = req as RequestLike;
  return {
    method: r.method,
    url: pathOnly(r.url),
    host: r.host ?? r.headers?.host,
    remoteAddress: r.ip,
    remotePort: r.socket?.remotePort,
  };
}

export const logSerializers = { err: safeErrSerializer, req: safeReqSerializer } as const;
