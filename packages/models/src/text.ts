/**
 * Input hygiene: text that may travel anywhere — a database (PostgreSQL refuses NUL in text),
 * UTF-8 (a lone UTF-16 surrogate has no encoding), logs, file names, process arguments. Every
 * HTTP route of the server and the controller runs its input through `rejectUnsafeText` (their
 * validator compiler) before its zod schema, so a request with such a string is a 400
 * `invalid_characters`, never a 500 from deeper down.
 */
import { z } from 'zod';
import { OpsplaneError } from './errors.js';

export const INVALID_CHARACTERS = 'invalid_characters';

// With the u flag, a well-formed surrogate pair is one code point; only lone halves match \p{Cs}.
const UNSAFE = /[\0\p{Cs}]/u;

/** Why `s` cannot be stored or sent on, or undefined when it can. */
export function unsafeTextReason(s: string): string | undefined {
  const m = UNSAFE.exec(s);
  if (!m) return undefined;
  return m[0] === '\0' ? 'must not contain NUL characters' : 'must not contain unpaired UTF-16 surrogates';
}

export function isSafeText(s: string): boolean {
  return !UNSAFE.test(s);
}

export interface UnsafeText {
  /** Where the string is: object keys and array indexes from the root. */
  path: (string | number)[];
  reason: string;
}

/**
 * The first string (value or object key) in `value` that is not safe text, depth-first, or
 * undefined. Buffers and other binary bodies are not text and are skipped.
 */
export function findUnsafeText(
  value: unknown,
  path: (string | number)[] = [],
  depth = 0,
): UnsafeText | undefined {
  if (typeof value === 'string') {
    const reason = unsafeTextReason(value);
    return reason ? { path, reason } : undefined;
  }
  if (value === null || typeof value !== 'object' || depth > 64) return undefined;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findUnsafeText(value[i], [...path, i], depth + 1);
      if (found) return found;
    }
    return undefined;
  }
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const keyReason = unsafeTextReason(k);
    if (keyReason) return { path: [...path, safeForMessage(k)], reason: `keys ${keyReason}` };
    const found = findUnsafeText(v, [...path, k], depth + 1);
    if (found) return found;
  }
  return undefined;
}

const PERCENT_RUN = /(?:%[0-9A-Fa-f]{2})+/g;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Unsafe text in a raw request URL (path and query, before any decoding): a NUL, raw or
 * percent-encoded, or percent-encoded bytes that are not UTF-8 — which includes the encodings
 * of lone surrogates (`%ED%A0%80`), since UTF-8 has none. Query parsers turn those into U+FFFD
 * or keep them raw; a request carrying them is refused instead.
 */
export function findUnsafeUrlText(
  url: string,
): (UnsafeText & { location: 'path' | 'querystring' }) | undefined {
  const q = url.indexOf('?');
  const parts = [
    ['path', q === -1 ? url : url.slice(0, q)],
    ['querystring', q === -1 ? '' : url.slice(q + 1)],
  ] as const;
  for (const [location, raw] of parts) {
    if (raw.includes('\0')) return { location, path: [], reason: 'must not contain NUL characters' };
    for (const m of raw.matchAll(PERCENT_RUN)) {
      const bytes = new Uint8Array(m[0].length / 3);
      for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(m[0].slice(i * 3 + 1, i * 3 + 3), 16);
      if (bytes.includes(0)) return { location, path: [], reason: 'must not contain NUL characters (%00)' };
      try {
        strictUtf8.decode(bytes);
      } catch {
        return { location, path: [], reason: 'must be percent-encoded UTF-8 (no lone surrogates)' };
      }
    }
  }
  return undefined;
}

/** `s` with NUL and lone surrogates replaced by U+FFFD: for messages and logs only. */
export function safeForMessage(s: string): string {
  return s.replace(/[\0\p{Cs}]/gu, '\uFFFD');
}

/** 400 `invalid_characters`: a request carried a string with NUL or a lone surrogate. */
export class InvalidTextError extends OpsplaneError {
  constructor(where: string, found: UnsafeText) {
    const at = [where, ...found.path.map(String)].filter(Boolean).join('.');
    super(INVALID_CHARACTERS, `${at}: ${found.reason}`, {
      status: 400,
      details: {
        location: where,
        path: found.path.map((p) => (typeof p === 'string' ? safeForMessage(p) : p)),
      },
    });
  }
}

/**
 * Wraps a validator (what a Fastify validator compiler returns for one part of a route: body,
 * querystring, params or headers) so that unsafe text is refused before the schema runs — the
 * schema layer of every route, whatever its zod schema says about its strings. The error is
 * returned the way Fastify validators return errors (`{ error }`).
 */
export function rejectUnsafeText<R>(
  where: string,
  validate: (data: unknown) => R,
): (data: unknown) => R | { error: InvalidTextError } {
  return (data: unknown) => {
    const found = findUnsafeText(data);
    if (found) return { error: new InvalidTextError(where, found) };
    return validate(data);
  };
}

/** A zod string that is safe text (no NUL, no lone surrogates): for schemas of free text. */
export const SafeTextSchema = z.string().refine(isSafeText, {
  message: 'must not contain NUL characters or unpaired UTF-16 surrogates',
});
