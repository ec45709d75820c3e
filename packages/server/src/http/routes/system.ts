/**
 * Liveness and metrics. /healthz is the one open route (load balancers, orchestrators).
 * /metrics accepts the configured metrics token (Prometheus `authorization: credentials`) or
 * any authenticated user; without a metrics token it is as closed as the rest of the API.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { RouteOptions } from '../context.js';

const HealthSchema = z.object({
  status: z.enum(['ok', 'unavailable']),
  database: z.enum(['ok', 'unavailable']),
});

export const systemRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  app.get(
    '/healthz',
    {
      config: { access: 'public' },
      schema: {
        summary: 'Liveness: 200 when the server and its database answer',
        tags: ['system'],
        security: [],
        response: { 200: HealthSchema, 503: HealthSchema },
      },
    },
    async (_req, reply) => {
      try {
        await ctx.database.ping();
        return { status: 'ok' as const, database: 'ok' as const };
      } catch (err) {
        ctx.logger.warn({ err }, 'health check: database unavailable');
        return reply.status(503).send({ status: 'unavailable', database: 'unavailable' });
      }
    },
  );

  app.get(
    '/metrics',
    {
      config: { access: 'metrics' },
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        description: 'Bearer metrics_token (server.metrics_token) or any authenticated user.',
        tags: ['system'],
        security: [{ bearerAuth: [] }, { cookieAuth: [] }],
      },
    },
    async (_req, reply) => {
      const text = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(text);
    },
  );
};
