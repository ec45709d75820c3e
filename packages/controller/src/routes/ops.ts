/**
 * Operational endpoints outside /api/v1, never behind the API token and never rate limited:
 * GET /healthz (liveness for load balancers and process supervisors) and GET /metrics
 * (Prometheus text format).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { RouteOptions } from '../context.js';

const HealthzSchema = z.object({
  status: z.literal('ok'),
  id: z.string(),
  area: z.string(),
  registered: z.boolean(),
  connected_agents: z.number().int().nonnegative(),
});

export const opsRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { ctx }) => {
  app.get(
    '/healthz',
    {
      config: { rateLimit: false },
      schema: {
        tags: ['ops'],
        summary: 'Liveness; `registered` tells whether the etcd registration is in place',
        response: { 200: HealthzSchema },
      },
    },
    async () => ({
      status: 'ok' as const,
      id: ctx.config.id,
      area: ctx.config.area,
      registered: ctx.isRegistered(),
      connected_agents: ctx.registry.connectedCount,
    }),
  );

  app.get(
    '/metrics',
    { config: { rateLimit: false }, schema: { tags: ['ops'], summary: 'Prometheus metrics' } },
    async (_req, reply) => {
      const body = await ctx.metrics.registry.metrics();
      return reply.type(ctx.metrics.registry.contentType).send(body);
    },
  );
};
