/**
 * Cross-site request forgery, refused in one root onRequest hook that runs after authentication:
 *
 * - A state-changing request (not GET/HEAD/OPTIONS) authenticated by the session cookie must
 *   come from one of the server's own origins: `Origin` is the origin the request was addressed
 *   to (scheme and Host, as trust_proxy allows) or one of `server.allowed_origins`, or the
 *   browser says `Sec-Fetch-Site: same-origin`. A missing or foreign Origin is a 403
 *   `csrf_origin`. SameSite=Strict alone does not do it: a page on another port of the same host
 *   is same-site, and its forms carry the cookie.
 * - Public state-changing routes (login) refuse a foreign `Origin` too (login CSRF); clients
 *   that send none (CLI, scripts) are not browsers.
 * - Bearer-token requests are not checked: browsers never attach a token by themselves.
 * - Bodies are JSON (the route's `consumes` types besides: the CSV import, bundle uploads); any
 *   other Content-Type — text/plain and the form encodings, which a plain HTML form can send
 *   without a CORS preflight — is a 415 `unsupported_media_type`, even with an empty body.
 *
 * Refusals are audited by rejections.ts like every request refused before its handler.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OpsplaneError } from '@opsplane/models';
import { normalizeOrigin } from '../config.js';
import type { ServerContext } from './context.js';

export const CSRF_ORIGIN = 'csrf_origin';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export class CsrfOriginError extends OpsplaneError {
  constructor(message: string) {
    super(CSRF_ORIGIN, message, { status: 403 });
  }
}

export class UnsupportedMediaTypeError extends OpsplaneError {
  constructor(message: string) {
    super('unsupported_media_type', message, { status: 415 });
  }
}

/** `text/csv; charset=utf-8` → `text/csv`. */
function mediaType(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  return header.split(';')[0]?.trim().toLowerCase() || undefined;
}

/** The origin this request was addressed to (scheme + Host), as a browser would write it. */
export function requestOrigin(req: FastifyRequest): string | undefined {
  return req.host ? normalizeOrigin(`${req.protocol}://${req.host}`) : undefined;
}

/** Why a cookie-authenticated (or public) state-changing request is not same-origin, or undefined. */
export function crossOriginReason(req: FastifyRequest, allowed: readonly string[]): string | undefined {
  // Set by the browser only (pages cannot forge it): the page is on this very origin, whatever
  // the server believes its own origin to be (e.g. behind a TLS proxy without trust_proxy).
  if (req.headers['sec-fetch-site'] === 'same-origin') return undefined;
  const origin = req.headers.origin;
  if (origin === undefined || origin === '') {
    return 'a state-changing request with the session cookie must carry an Origin header of this server';
  }
  const o = normalizeOrigin(origin);
  if (o !== undefined && (o === requestOrigin(req) || allowed.includes(o))) return undefined;
  return `requests from origin '${origin.slice(0, 200)}' are not allowed (server.allowed_origins)`;
}

export function installBrowserGuard(app: FastifyInstance, ctx: ServerContext): void {
  const allowed = ctx.config.server.allowed_origins;
  app.addHook('onRequest', async (req) => {
    if (SAFE_METHODS.has(req.method) || req.routeOptions.url === undefined) return;
    const viaCookie = req.principal?.via === 'session';
    const isPublic = (req.routeOptions.config.access ?? 'viewer') === 'public';
    if (viaCookie || (isPublic && req.headers.origin !== undefined)) {
      const why = crossOriginReason(req, allowed);
      if (why !== undefined) throw new CsrfOriginError(why);
    }
    const type = mediaType(req.headers['content-type']);
    if (type !== undefined) {
      const consumes = (req.routeOptions.schema?.consumes as string[] | undefined) ?? ['application/json'];
      if (!consumes.includes(type)) {
        throw new UnsupportedMediaTypeError(
          `unsupported content-type '${type.slice(0, 100)}': send ${consumes.join(' or ')}`,
        );
      }
    }
  });
}
