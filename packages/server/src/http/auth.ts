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
import type { UserRow } from '../storage/schema.js';
import { lowerRole, roleAtLeast, type Role } from '@opsplane/api';
import { looksLikeApiToken, sha256Hex } from '../security/tokens.js';
import { actorOf } from './audit.js';
import type { ServerContext } from './context.js';

export const SESSION_COOKIE = 'opsplane_session';

export type Access = 'public' | 'metrics' | Role;

export interface Principal {
  user: UserRow;
  /** Effective role: the user's, capped by the token's. */
  role: Role;
  via: 'session' | 'token';
  sessionHash?: string;
  sessionExpiresAt?: Date;
  tokenId?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route (default 'viewer'). */
    access?: Access;
    /** Audit action for this route (recorded when a caller is denied). */
    action?: string;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/** Last-used timestamps are written at most once a minute per session/token. */
const TOUCH_INTERVAL_MS = 60_000;

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
  const touched = new Map<string, number>();
  const due = (key: string) => {
    const now = Date.now();
    if ((touched.get(key) ?? 0) + TOUCH_INTERVAL_MS > now) return false;
    if (touched.size > 10_000) touched.clear();
    touched.set(key, now);
    return true;
  };
  const background = (req: FastifyRequest, p: Promise<unknown>) =>
    p.catch((err: unknown) => req.log.warn({ err }, 'could not record last use'));

  async function authenticate(req: FastifyRequest, reply: FastifyReply): Promise<Principal> {
    const token = bearer(req);
    if (token !== undefined) {
      if (!looksLikeApiToken(token)) throw new UnauthorizedError('invalid API token');
      const found = await ctx.store.tokens.findActiveByHash(sha256Hex(token));
      if (!found) throw new UnauthorizedError('invalid, expired or revoked API token');
      if (found.user.disabled) throw new UnauthorizedError('account disabled');
      if (due(`t:${found.token.id}`)) background(req, ctx.store.tokens.touch(found.token.id));
      return {
        user: found.user,
        role: lowerRole(found.user.role as Role, found.token.role as Role),
        via: 'token',
        tokenId: found.token.id,
      };
    }
    const sid = req.cookies[SESSION_COOKIE];
    if (!sid) throw new UnauthorizedError();
    const hash = sha256Hex(sid);
    const found = await ctx.store.sessions.findValid(hash);
    if (!found || found.user.disabled) {
      reply.clearCookie(SESSION_COOKIE, cookieOptions(ctx, req));
      throw new UnauthorizedError(found ? 'account disabled' : 'session expired or invalid; log in again');
    }
    if (due(`s:${hash}`)) background(req, ctx.store.sessions.touch(hash));
    return {
      user: found.user,
      role: found.user.role as Role,
      via: 'session',
      sessionHash: hash,
      sessionExpiresAt: found.session.expiresAt,
    };
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
    if (!roleAtLeast(req.principal.role, min)) {
      const action = req.routeOptions.config.action ?? `${req.method} ${req.routeOptions.url ?? req.url}`;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        await ctx.store.audit
          .record({
            ...actorOf(req),
            action,
            result: 'failure',
            details: { error: 'forbidden', role: req.principal.role },
          })
          .catch((err: unknown) => req.log.error({ err }, 'could not audit a denied request'));
      }
      throw new ForbiddenError(`this needs the ${min} role; you act as ${req.principal.role}`);
    }
  });
}

/** For handlers: the caller (routes other than 'public'/'metrics' always have one). */
export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new UnauthorizedError();
  return req.principal;
}
