/**
 * Login, logout and "who am I". A login creates a session whose random id travels only in an
 * HttpOnly, SameSite=Strict cookie (Secure over https) and is stored hashed. Failed logins are
 * audited and rate-limited per client address.
 */
import type {} from '@fastify/rate-limit'; // route config.rateLimit types
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { UnauthorizedError } from '@opsplane/models';
import { audited } from '../audit.js';
import { cookieOptions, principalOf, SESSION_COOKIE } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { ErrorBodySchema, LoginBodySchema, MeResponseSchema, commonErrors, type Role } from '@opsplane/api';
import { toUser } from '../../storage/users-repo.js';
import { dummyHash, hashPassword, needsRehash, verifyPassword } from '../../security/passwords.js';
import { newSessionId, sha256Hex } from '../../security/tokens.js';

export const authRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { store } = ctx;
  const limit = ctx.config.server.login_rate_limit;

  app.post(
    '/auth/login',
    {
      config: {
        access: 'public',
        action: 'auth.login',
        rateLimit: {
          max: limit.max,
          timeWindow: limit.window,
          onExceeded: (req) => {
            void store.audit
              .record({
                actor: 'anonymous',
                action: 'auth.login',
                result: 'failure',
                ip: req.ip,
                details: { reason: 'rate_limited' },
              })
              .catch((err: unknown) => req.log.error({ err }, 'could not audit a rate-limited login'));
          },
        },
      },
      schema: {
        summary: 'Log in with username and password; sets the session cookie',
        tags: ['auth'],
        security: [],
        body: LoginBodySchema,
        response: { 200: MeResponseSchema, 400: ErrorBodySchema, 401: ErrorBodySchema, 429: ErrorBodySchema },
      },
    },
    async (req, reply) => {
      const { username, password } = req.body;
      const user = await store.users.getByUsername(username);
      // Verify even for unknown users so that timing does not tell which names exist.
      const ok = await verifyPassword(password, user?.passwordHash ?? (await dummyHash()));
      if (!user || !ok || user.disabled) {
        ctx.metrics.loginFailures.inc();
        await store.audit.record({
          actor: username.slice(0, 64),
          actorId: user?.id ?? null,
          action: 'auth.login',
          result: 'failure',
          ip: req.ip,
          details: { reason: !user ? 'unknown_user' : !ok ? 'bad_password' : 'disabled' },
        });
        throw new UnauthorizedError('invalid username or password');
      }
      const sid = newSessionId();
      const ttl = ctx.config.server.session_ttl;
      const expiresAt = new Date(Date.now() + ttl);
      req.principal = { user, role: user.role as Role, via: 'session' };
      await audited(ctx, req, { action: 'auth.login', targetType: 'user', targetId: user.id }, async (tx) => {
        await tx.sessions.create({
          idHash: sha256Hex(sid),
          userId: user.id,
          expiresAt,
          ip: req.ip,
          ...(req.headers['user-agent'] ? { userAgent: req.headers['user-agent'] } : {}),
        });
        await tx.users.recordLogin(user.id);
        if (needsRehash(user.passwordHash))
          await tx.users.update(user.id, { passwordHash: await hashPassword(password) });
      });
      void store.sessions.purgeExpired().catch(() => undefined);
      reply.setCookie(SESSION_COOKIE, sid, cookieOptions(ctx, req, Math.floor(ttl / 1000)));
      return {
        user: toUser(user),
        auth: 'session' as const,
        role: user.role as Role,
        session_expires_at: expiresAt.toISOString(),
      };
    },
  );

  app.post(
    '/auth/logout',
    {
      config: { access: 'viewer', action: 'auth.logout' },
      schema: {
        summary: 'End the current session (a token-authenticated call just succeeds)',
        tags: ['auth'],
        response: { 204: z.null(), ...commonErrors },
      },
    },
    async (req, reply) => {
      const p = principalOf(req);
      if (p.via === 'session' && p.sessionHash) {
        const hash = p.sessionHash;
        await audited(ctx, req, { action: 'auth.logout', targetType: 'user', targetId: p.user.id }, (tx) =>
          tx.sessions.delete(hash),
        );
      }
      reply.clearCookie(SESSION_COOKIE, cookieOptions(ctx, req));
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/auth/me',
    {
      config: { access: 'viewer' },
      schema: {
        summary: 'The authenticated user',
        tags: ['auth'],
        response: { 200: MeResponseSchema, ...commonErrors },
      },
    },
    async (req) => {
      const p = principalOf(req);
      return {
        user: toUser(p.user),
        auth: p.via,
        role: p.role,
        ...(p.sessionExpiresAt ? { session_expires_at: p.sessionExpiresAt.toISOString() } : {}),
      };
    },
  );
};
