/**
 * Authentication and authorisation for every route, in one root onRequest hook. Each route
 * declares `config.access`: 'public', 'metrics' (the metrics token or any user), or the lowest
 * role allowed (default 'viewer', so a route that forgets to say is still closed). Callers
 * authenticate with `Authorization: Bearer opsp_…` (API token) or the session cookie.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type {} from '@fastify/cookie'; // request.cookies / reply.setCookie types
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from '@opsplane/models';
import { roleAtLeast, type Access, type Role } from '@opsplane/api';
import type { Caller } from '../services/accounts.js';
import { bestRole } from '../services/access.js';
import { ANONYMOUS, type Actor } from '../services/audit-trail.js';
import type { ServerContext } from './context.js';

export const SESSION_COOKIE = 'opsplane_session';

/** The authenticated caller of a request. */
export type Principal = Caller;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (default 'viewer'). */
    access?: Access;
    /** Audit action for this route (recorded when a caller is denied). */
    action?: string;
    /** 'area': the caller needs the role in some area; the service checks the areas concerned. */
    scope?: 'area';
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) throw new UnauthorizedError("unsupported Authorization header (expected 'Bearer <token>')");
  return m[1];
}

export function cookieOptions(ctx: ServerContext, req: FastifyRequest, maxAgeSeconds?: number) {
  const mode = ctx.config.server.cookie_secure;
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: mode === 'auto' ? req.protocol === 'https' : mode,
    ...(maxAgeSeconds !== undefined ? { maxAge: maxAgeSeconds } : {}),
  };
}

export function installAuth(app: FastifyInstance, ctx: ServerContext): void {
  async function authenticate(req: FastifyRequest, reply: FastifyReply): Promise<Caller> {
    const token = bearer(req);
    if (token !== undefined) return ctx.accounts.byToken(token, req.ip);
    const sid = req.cookies[SESSION_COOKIE];
    if (!sid) throw new UnauthorizedError();
    try {
      return await ctx.accounts.bySession(sid, req.ip);
    } catch (e) {
      if (e instanceof UnauthorizedError) reply.clearCookie(SESSION_COOKIE, cookieOptions(ctx, req));
      throw e;
    }
  }

  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req, reply) => {
    const access = req.routeOptions.config.access ?? 'viewer';
    if (access === 'public') return;
    const metricsToken = ctx.config.server.metrics_token;
    if (access === 'metrics' && metricsToken) {
      const h = req.headers.authorization;
      if (h && sameSecret(h.replace(/^Bearer\s+/i, '').trim(), metricsToken)) return;
    }
    req.principal = await authenticate(req, reply);
    const min: Role = access === 'metrics' ? 'viewer' : access;
    // Audited as a refusal (rejections.ts) when the route changes something.
    const perArea = req.routeOptions.config.scope === 'area';
    const have = perArea ? bestRole(req.principal) : req.principal.role;
    if (!roleAtLeast(have, min)) {
      throw new ForbiddenError(
        `this needs the ${min} role${perArea ? ' (in the areas it concerns)' : ''}; you act as ${have}`,
      );
    }
  });
}

/**
 * The caller a request's credentials name, if they are valid — for requests refused before
 * authentication ran (a URL that does not decode); undefined otherwise, never an error.
 */
export async function identify(req: FastifyRequest, ctx: ServerContext): Promise<Caller | undefined> {
  try {
    const token = bearer(req);
    if (token !== undefined) return await ctx.accounts.byToken(token, req.ip);
    // An unrouted request (framework error) has not been through the cookie plugin's hook.
    const cookies = req.cookies ?? req.server.parseCookie(req.headers.cookie ?? '');
    const sid = cookies[SESSION_COOKIE];
    return sid ? await ctx.accounts.bySession(sid, req.ip) : undefined;
  } catch {
    return undefined;
  }
}

/** Who acts in this request, for audit records: the caller, or anonymous. */
export function actorOf(req: FastifyRequest): Actor {
  return req.principal ?? ANONYMOUS(req.ip);
}

/** For handlers: the caller (routes other than 'public'/'metrics' always have one). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new UnauthorizedError();
  return req.principal;
}
