/**
 * Login, logout and "who am I" (services/accounts.ts). A login's session id travels only in an
 * HttpOnly, SameSite=Strict cookie (Secure over https). Failed logins are audited and
 * rate-limited per client address.
 */
import type {} from '@fastify/rate-limit'; // route config.rateLimit types
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ENDPOINTS } from '@opsplane/api';
import { ANONYMOUS } from '../../services/audit-trail.js';
import { cookieOptions, principalOf, SESSION_COOKIE } from '../auth.js';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

const E = ENDPOINTS.auth;

export const authRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  const { accounts } = ctx;
  const limit = ctx.config.server.login_rate_limit;
  const login = endpointRoute(E.login);

  app.route({
    ...login,
    config: {
      ...login.config,
      rateLimit: {
        max: limit.max,
        timeWindow: limit.window,
        onExceeded: (req) => {
          void ctx.audit.record(ANONYMOUS(req.ip), {
            action: 'auth.login',
            result: 'failure',
            details: { reason: 'rate_limited' },
          });
        },
      },
    },
    handler: async (req, reply) => {
      const { sid, me } = await accounts.login(req.body.username, req.body.password, {
        ip: req.ip,
        userAgent: req.headers['user-agent'],
      });
      reply.setCookie(
        SESSION_COOKIE,
        sid,
        cookieOptions(ctx, req, Math.floor(ctx.config.server.session_ttl / 1000)),
      );
      return me;
    },
  });

  app.route({
    ...endpointRoute(E.logout),
    handler: async (req, reply) => {
      await accounts.logout(principalOf(req));
      reply.clearCookie(SESSION_COOKIE, cookieOptions(ctx, req));
      return reply.status(204).send(null);
    },
  });

  app.route({ ...endpointRoute(E.me), handler: async (req) => accounts.me(principalOf(req)) });
};
