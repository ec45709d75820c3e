/**
 * Liveness and metrics. /healthz is the one open route (load balancers, orchestrators).
 * /metrics accepts the configured metrics token (Prometheus `authorization: credentials`) or
 * any authenticated user; without a metrics token it is as closed as the rest of the API.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { SYSTEM_ENDPOINTS } from '@opsplane/api';
import type { RouteOptions } from '../context.js';
import { endpointRoute } from '../route.js';

export const systemRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  app.route({
    ...endpointRoute(SYSTEM_ENDPOINTS.health),
    handler: async (_req, reply) => {
      try {
        await ctx.checkDatabase();
        return { status: 'ok' as const, database: 'ok' as const };
      } catch (err) {
        ctx.logger.warn({ err }, 'health check: database unavailable');
        return reply.status(503).send({ status: 'unavailable', database: 'unavailable' });
      }
    },
  });

  const metrics = endpointRoute(SYSTEM_ENDPOINTS.metrics);
  app.route({
    ...metrics,
    schema: { ...metrics.schema, security: [{ bearerAuth: [] }, { cookieAuth: [] }] },
    handler: async (_req, reply) => {
      const text = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(text);
    },
  });
};
